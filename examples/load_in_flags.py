"""The seed-style flags: load_in_8bit (INT8_ASYM) and load_in_4bit (optimum-intel's 4-bit default for the model:
its tuned config if it has one, else INT4_ASYM, group 128, ratio 1.0).

python examples/load_in_flags.py [MODEL]
"""

import sys

from optimum_wc import OVModelForCausalLM

model_id = sys.argv[1] if len(sys.argv) > 1 else "models/tiny-llama-pydoc"
for flags in ({"load_in_8bit": True}, {"load_in_4bit": True}):
    model = OVModelForCausalLM.from_pretrained(model_id, export=True, compile=False, **flags)
    print(flags, "->", model.quantization_config)
