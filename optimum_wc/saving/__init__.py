"""A saved model folder: the IR, the Hugging Face files beside it, what was done to each weight, a model card."""
