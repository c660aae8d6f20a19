"""Compress, save, reload without compressing again, and generate through a transformers pipeline.

python examples/save_reload_pipeline.py [MODEL] [OUTPUT_DIR]
"""

import sys

from transformers import AutoTokenizer, pipeline

from optimum_wc import OVModelForCausalLM

model_id = sys.argv[1] if len(sys.argv) > 1 else "models/tiny-llama-pydoc"
output = sys.argv[2] if len(sys.argv) > 2 else "outputs/tiny-llama-pydoc-nf4"

model = OVModelForCausalLM.from_pretrained(model_id, export=True, quantization_config={"mode": "nf4", "group_size": 64})
model.save_pretrained(output)  # IR, configs, tokenizer, openvino_config.json, model card; written atomically

reloaded = OVModelForCausalLM.from_pretrained(output)
print("restored config:", reloaded.quantization_config)
generator = pipeline("text-generation", model=reloaded, tokenizer=AutoTokenizer.from_pretrained(output))
print(generator("Exceptions are", max_new_tokens=20, do_sample=False)[0]["generated_text"])
