"""Export a Transformers causal LM and compress it with a WeightCompressionConfig (or an optimum-intel dict).

python examples/from_pretrained_config.py [MODEL]
"""

import sys

from transformers import AutoTokenizer

from optimum_wc import OVModelForCausalLM, WeightCompressionConfig

model_id = sys.argv[1] if len(sys.argv) > 1 else "models/tiny-llama-pydoc"

# Our vocabulary ...
config = WeightCompressionConfig(mode="int4_sym", group_size=64, ratio=0.8, backup_mode="int8_asym")
# ... or optimum-intel's, unchanged: {"bits": 4, "sym": True, "group_size": 64, "ratio": 0.8}
model = OVModelForCausalLM.from_pretrained(model_id, export=True, quantization_config=config)

tokenizer = AutoTokenizer.from_pretrained(model_id)
inputs = tokenizer("The list type", return_tensors="pt")
print(tokenizer.decode(model.generate(**inputs, max_new_tokens=20, do_sample=False)[0], skip_special_tokens=True))
print(model.compression_summary.to_table())
