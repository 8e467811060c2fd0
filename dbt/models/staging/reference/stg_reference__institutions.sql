select
    institution_id,
    name,
    category,
    government_level,
    nullif(kemendagri_code, '') as kemendagri_code,
    nullif(province_code, '') as province_code
from {{ ref('institutions') }}
