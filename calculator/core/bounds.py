"""Input bounds shared by the core, the API schema and the web form (one source of truth).

Sizes beyond these are not models anyone trains; they are typos, and the user deserves a clear
error instead of a silly number.
"""

from __future__ import annotations

MAX_HIDDEN_SIZE = 131_072
MAX_INTERMEDIATE_SIZE = 1_048_576
MAX_LAYERS = 1_024
MAX_HEADS = 1_024
MAX_HEAD_DIM = 4_096
MAX_VOCAB_SIZE = 4_194_304
MAX_EXPERTS = 1_024
MAX_POSITIONS = 16_777_216

MAX_RANK = 65_536
MAX_ALPHA = 1_000_000.0
MAX_BATCH_SIZE = 65_536
MAX_SEQ_LEN = 4_194_304
MAX_GPUS = 65_536
MAX_PATTERN_ENTRIES = 256
MAX_LIST_ENTRIES = 1_024
MAX_NAME_LENGTH = 256
