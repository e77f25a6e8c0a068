"""Text pieces shared by the BERT tasks (reviews, sts): the packaged checkpoint, the in-graph
WordPiece tokenizer, mean pooling and the AdamW fine-tuning schedule."""
