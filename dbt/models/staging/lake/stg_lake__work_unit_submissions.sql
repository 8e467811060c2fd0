{{ stage_submission_files('work_unit_submissions', {'work_unit': 'varchar'}) }}
