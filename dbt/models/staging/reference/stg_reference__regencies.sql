select
    kode_kemendagri as kemendagri_code,
    nama as name,
    jenis as category,
    kode_provinsi as province_code,
    nama_provinsi as province_name,
    kode_bps_2020 as bps_code_2020
from {{ ref('wilayah_kabkota') }}
