"""Constants shared across the toolkit: special tokens, label values, fixed challenge settings.

Values the official kit hard-codes (and the challenge rules fix) are named here once.
"""

# Label value ignored by the loss (prompt, image and padding positions).
IGNORE_INDEX = -100
# Placeholder id put in input_ids where the image embeddings are spliced in (never a real token id).
IMAGE_TOKEN_INDEX = -200
# The image marker in LLaVA-format conversation text.
IMAGE_TOKEN = "<image>"

# Data-Juicer's multimodal special tokens (its defaults).
DJ_IMAGE_TOKEN = "<__dj__image>"
DJ_EOC_TOKEN = "<|__dj__eoc|>"

# Challenge rules: at most this many samples go to pretraining, and the global batches are fixed.
MAX_PRETRAIN_SAMPLES = 200_000
PRETRAIN_GLOBAL_BATCH = 256
FINETUNE_GLOBAL_BATCH = 128

# The official kit seeds training and the sample cap with this value.
SEED = 1024

# OpenAI CLIP normalisation, used by both vision towers, and the pad colour (the mean as integers).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
PAD_COLOR = (122, 116, 104)
