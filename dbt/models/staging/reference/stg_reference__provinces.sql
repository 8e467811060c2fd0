select
    kode_kemendagri as province_code,
    nama as province_name,
    kode_bps_2020 as bps_code_2020,
    jumlah_kabupaten::integer as n_kabupaten,
    jumlah_kota::integer as n_kota
from {{ ref('wilayah_provinsi') }}
