{{ stage_submission_files('submissions') }}
