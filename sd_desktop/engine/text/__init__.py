"""Prompt to embeddings: the CLIP tokenizer, A1111 prompt syntax and 77-token chunks."""
