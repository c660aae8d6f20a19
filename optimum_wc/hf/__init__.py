"""The Hugging Face side: OVModelForCausalLM, exporting with optimum-intel, the model card (the `hf` extra)."""
