select
    tahun::integer as year,
    indeks_spbe_nasional as index_value,
    indeks_domain_kebijakan as policy_index,
    indeks_domain_tata_kelola as governance_index,
    indeks_domain_manajemen as management_index,
    indeks_domain_layanan as services_index,
    jumlah_instansi as n_institutions,
    jumlah_instansi_pusat as n_pusat,
    jumlah_pemda as n_pemda,
    jenis_kegiatan as activity,
    kerangka as framework_text,
    keputusan_hasil as decree,
    catatan as note
from {{ ref('spbe_indeks_nasional') }}
