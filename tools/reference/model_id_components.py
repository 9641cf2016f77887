#!/usr/bin/env python3
"""Records gguf-py's split of model ids into name, organization, basename, finetune, version and size label
(`gguf.Metadata.get_model_id_components`, what llama.cpp's converter names a model by when its card is silent) for
a list of real-looking ids, into fixtures/reference/model-id-components.json, which a Swift test compares Ingot's
own split against. Needs only gguf-py (pip install gguf==0.19.0).

usage: tools/reference/model_id_components.py
"""
import json
import os

from gguf.metadata import Metadata
import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IDS = [
    ("SmolLM2-135M-Instruct", 134515008), ("HuggingFaceTB/SmolLM2-135M-Instruct", 134515008),
    ("meta-llama/Llama-2-7b-hf", 6738415616), ("meta-llama/Meta-Llama-3.1-8B-Instruct", 8030261248),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", 1777088000), ("deepseek-ai/DeepSeek-R1-Distill-Llama-70B", 70553706496),
    ("deepseek-ai/DeepSeek-V3", 671026419200), ("mistralai/Mixtral-8x7B-Instruct-v0.1", 46702792704),
    ("mistralai/Mistral-7B-v0.1", 7241732096), ("Qwen/Qwen2.5-0.5B-Instruct", 494032768),
    ("Qwen/Qwen3-30B-A3B", 30532122624), ("bigscience/bloom-7b1", 7069016064), ("TinyLlama-1.1B-Chat-v1.0", 1100048384),
    ("Llama-3.2-1B-Instruct-Q4_K_M", 1235814400), ("gpt2-xl", 1557611200), ("t5-small", 60506624),
    ("Phi-3-mini-128k-instruct", 3821079552), ("smollm2-llama", 134515008), ("smollm2-qwen3moe", 12000000),
    ("tiny-llama-spm", 4200000), ("ds3", 6400000), ("my model with spaces", 100), ("../relative-7B", 7000000000),
    ("snapshots", 0), ("a1b2c3d4e5f6", 134515008), ("Model-v2-7B-chat-32k", 7000000000), ("x--y---z", 10),
    ("OLMo-2-1124-7B-Instruct", 7299211264), ("granite-3.0-2b-instruct", 2533531648), ("Mistral-Small-24B-Base-2501", 23572403200),
]


def main():
    out = []
    for model_id, params in IDS:
        name, org, basename, finetune, version, size = Metadata.get_model_id_components(model_id, params)
        out.append({"id": model_id, "total_params": params, "name": name, "organization": org, "basename": basename,
                    "finetune": finetune, "version": version, "size_label": size})
    with open(os.path.join(ROOT, "fixtures/reference/model-id-components.json"), "w", encoding="utf-8") as f:
        json.dump({"reference": f"gguf-py {gguf.__version__ if hasattr(gguf, '__version__') else '0.19.0'} "
                                "Metadata.get_model_id_components; tools/reference/model_id_components.py",
                   "cases": out}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
