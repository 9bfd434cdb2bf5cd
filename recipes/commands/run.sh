#!/usr/bin/env bash
# Command words with out-of-vocabulary rejection -- kaldilite's main recipe.
#
# Ten commands (lang/en/commands.txt) are recognized; other words must be rejected. The grammar
# holds the commands, the filler words (lang/en/fillers.txt, trained from their recordings), a
# garbage phone loop and the silence word; a rejection threshold on the lattice confidence is
# calibrated on the dev speakers for a target false-accept rate.
#
#   ./run.sh                                  # the shared Speech Commands subset ($KALDILITE_DATA)
#   ./run.sh --corpus /path/to/speech_commands_v0.02   # any folder in the Speech Commands layout
#   ./run.sh --corpus synthetic               # espeak-ng voices (no recordings needed)
#   ./run.sh --stage 2 --stop-stage 3 && ./run.sh --stage 9   # edited lang/en: new lang + grammar +
#                                             # graphs + decode + calibration, acoustic models reused
#   ./run.sh --train-models mono              # only the monophone system (quick)
#
# Timing (2 cores shared with other jobs, load ~15): stages 0-3 1 min, mono 5 min (3000-utt subset),
# tri1 8 min, tri2b 15 min, graphs + decoding + calibration of three models 5 min.
#
# Stages: 0 corpus (+ speed/noise augmentation of train), 1 MFCC + CMVN, 2 lang, 3 grammars,
# 4 mono, 5 tri1, 6 tri2b, 7 tri3b (SAT), 8 nnet2 (DNN on tri3b alignments), 9 graphs + decode,
# 10 calibrate + score + RESULTS.
set -euo pipefail

stage=0
stop_stage=100
corpus=                # default: $KALDILITE_DATA/speech_commands; or a folder; or "synthetic"
augment=auto           # auto: speed 0.9/1.0/1.1 + noise copy when train has < 20000 utterances
num_speakers=          # keep only this many speakers per part (quick runs, CI)
nj=2
train_models="mono tri1 tri2b tri3b nnet2"   # which acoustic models stages 4-8 train (CI: mono)
totgauss=1000
mono_utts=3000         # mono trains on this many training utterances (as Kaldi's recipes train it on a subset)
beam=13.0
lattice_beam=10.0
acwt=0.1
target_fa=0.05
rejection_score=llr     # what the threshold applies to: llr (command vs filler/garbage per frame) or confidence
tri1_leaves=800; tri1_gauss=6000
tri2b_leaves=1000; tri2b_gauss=8000
tri3b_leaves=1000; tri3b_gauss=8000
garbage_cost=0.0
dir=work               # where data/ exp/ mfcc/ go
help_message="Usage: $0 [--stage N] [--stop-stage N] [--corpus DIR|synthetic] [--augment auto|true|false] [--nj N]
  e.g.: $0 --stage 3 --stop-stage 10"

cd "$(dirname "$0")"
. ../utils/path.sh
. ../utils/parse_options.sh

recipe_dir=$(pwd)
mkdir -p "$dir"
cd "$dir"
lang_en="$KALDILITE_REPO/lang/en"
mfcc_conf="$recipe_dir/conf/mfcc.conf"

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  default_corpus=${KALDILITE_DATA:-$KALDILITE_REPO/../shared/data}/speech_commands
  if [ -z "$corpus" ] && [ ! -d "$default_corpus" ]; then
    log "Stage 0: no recorded Speech Commands at $default_corpus: using the synthetic espeak-ng corpus"
    corpus=synthetic
  fi
  if [ "$corpus" = synthetic ]; then
    log "Stage 0: synthetic corpus (espeak-ng voices, speeds, pitches, noise)"
    kaldilite synthesize-corpus --commands "$lang_en/commands.txt" --fillers "$lang_en/fillers.txt" downloads/synthetic >/dev/null
    corpus_dir=downloads/synthetic
  else
    corpus_dir=${corpus:-$default_corpus}
    log "Stage 0: Speech Commands corpus from $corpus_dir"
  fi
  [ -d "$corpus_dir" ] || { echo "$0: no corpus at $corpus_dir; pass --corpus DIR or --corpus synthetic" >&2; exit 1; }
  kaldilite prepare-speech-commands --lexicon "$lang_en/lexicon.txt" ${num_speakers:+--num-speakers $num_speakers} \
    "$corpus_dir" data
  n_train=$(wc -l < data/train/utt2spk)
  if [ "$augment" = true ] || { [ "$augment" = auto ] && [ "$n_train" -lt 20000 ]; }; then
    log "Stage 0: augmenting $n_train training utterances: speed 0.9/1.0/1.1 and a copy with background noise"
    kaldilite perturb-data-dir-speed 0.9,1.0,1.1 data/train data/train_sp
    kaldilite add-noise-data-dir --bg-noise-dir data/noise_train --bg-snrs 20:15:10:5 data/train data/train_noise
    kaldilite data combine data/train_aug data/train_sp data/train_noise
  else
    rm -rf data/train_aug && cp -r data/train data/train_aug
  fi
  for x in train_aug dev; do kaldilite data validate --no-feats data/$x; done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: MFCC + per-speaker CMVN stats"
  for x in train_aug dev; do
    kaldilite make-mfcc --config "$mfcc_conf" --nj $nj data/$x exp/make_mfcc/$x mfcc
    kaldilite compute-cmvn-stats data/$x exp/make_mfcc/$x mfcc
  done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: lang (CMUdict pronunciations of every word in $lang_en)"
  kaldilite prepare-lang "$lang_en" "<UNK>" data/local/lang_tmp data/lang
  kaldilite validate-lang data/lang
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: grammars: commands + fillers + silence + garbage loop; and commands only (rejection off)"
  # The silence word is one more filler: a noise-only utterance then decodes as !SIL, which
  # is the 12-class task's "silence", and is never a command.
  mkdir -p data/local
  { cat "$lang_en/fillers.txt"; echo '!SIL'; } > data/local/fillers_and_silence.txt
  kaldilite make-grammar --fillers data/local/fillers_and_silence.txt --garbage true --garbage-cost $garbage_cost \
    "$lang_en/commands.txt" data/lang data/lang_commands
  kaldilite make-grammar "$lang_en/commands.txt" data/lang data/lang_commands_norej
  for x in lang_commands lang_commands_norej; do kaldilite validate-lang data/$x; done
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: monophone training (transcripts include the filler words and !SIL)"
  if [ "$(wc -l < data/train_aug/utt2spk)" -gt "$mono_utts" ]; then
    kaldilite data subset data/train_aug "$mono_utts" data/train_mono
  else
    rm -rf data/train_mono && cp -r data/train_aug data/train_mono
  fi
  kaldilite train-mono --nj $nj --totgauss $totgauss data/train_mono data/lang exp/mono
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ] && [[ " $train_models " == *" tri1 "* ]]; then
  log "Stage 5: tri1 (deltas + triphone tree) on the mono alignments of the augmented train set"
  kaldilite align --nj $nj data/train_aug data/lang exp/mono exp/mono_ali
  kaldilite train-deltas --nj $nj $tri1_leaves $tri1_gauss data/train_aug data/lang exp/mono_ali exp/tri1
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ] && [[ " $train_models " == *" tri2b "* ]]; then
  log "Stage 6: tri2b (splice + LDA + MLLT) on the tri1 alignments"
  kaldilite align --nj $nj data/train_aug data/lang exp/tri1 exp/tri1_ali
  kaldilite train-lda-mllt --nj $nj $tri2b_leaves $tri2b_gauss data/train_aug data/lang exp/tri1_ali exp/tri2b
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ] && [[ " $train_models " == *" tri3b "* ]]; then
  log "Stage 7: tri3b (SAT, per-speaker fMLLR) on the tri2b alignments"
  kaldilite align --nj $nj data/train_aug data/lang exp/tri2b exp/tri2b_ali
  kaldilite train-sat --nj $nj $tri3b_leaves $tri3b_gauss data/train_aug data/lang exp/tri2b_ali exp/tri3b
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ] && [[ " $train_models " == *" nnet2 "* ]]; then
  # MFCC + CMVN input (no fMLLR), so the DNN also runs online (export-model); the tree, transition
  # model and graph are tri3b's; the augmented set (speeds, noise) is what carries it across speakers.
  log "Stage 8: nnet2 p-norm DNN on the tri3b (fMLLR) alignments of the augmented train set"
  [ -f exp/tri3b/final.mdl ] || { echo "$0: exp/tri3b/final.mdl missing; run stage 7 first" >&2; exit 1; }
  kaldilite align-fmllr --nj $nj data/train_aug data/lang exp/tri3b exp/tri3b_ali
  kaldilite train-nnet2 --config "$recipe_dir/conf/nnet2.conf" data/train_aug data/lang exp/tri3b_ali exp/nnet2
fi

# Every exp/<sys>/final.mdl is decoded and scored by stages 9 and 10 (SAT in two passes, the DNN
# with its GMM system's graph).
models=()
for m in mono tri1 tri2b tri3b nnet2; do
  [ -f exp/$m/final.mdl ] && models+=($m)
done

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  for m in "${models[@]}"; do
    log "Stage 9: $m: graphs (with rejection, commands only) and decoding of dev"
    if [ $m = nnet2 ]; then  # the DNN shares tri3b's tree: its graphs, without tri3b's calibrated rule
      for g in graph_commands graph_commands_norej; do
        rm -rf exp/nnet2/$g && cp -r exp/tri3b/$g exp/nnet2/$g && rm -f exp/nnet2/$g/rejection.json
      done
    else
      kaldilite mkgraph data/lang_commands exp/$m exp/$m/graph_commands
      kaldilite mkgraph data/lang_commands_norej exp/$m exp/$m/graph_commands_norej
    fi
    kaldilite decode-commands --nj $nj --beam $beam --lattice-beam $lattice_beam --acwt $acwt \
      exp/$m/graph_commands data/dev exp/$m/decode_dev
    kaldilite decode-commands --nj $nj --beam $beam --lattice-beam $lattice_beam --acwt $acwt \
      exp/$m/graph_commands_norej data/dev exp/$m/decode_dev_norej
  done
fi

if [ $stage -le 10 ] && [ $stop_stage -ge 10 ]; then
  log "Stage 10: calibrate the rejection threshold (FA target $target_fa), score, RESULTS"
  for m in "${models[@]}"; do
    kaldilite calibrate-rejection --target-fa $target_fa --score $rejection_score "$lang_en/commands.txt" data/dev exp/$m/decode_dev \
      exp/$m/graph_commands
    kaldilite score-commands --name $m --graph exp/$m/graph_commands "$lang_en/commands.txt" data/dev exp/$m/decode_dev
    kaldilite score-commands --name "$m (commands-only grammar)" --no-rejection "$lang_en/commands.txt" data/dev \
      exp/$m/decode_dev_norej
  done
  {
    echo "# Speech commands with OOV rejection: dev = $(wc -l < data/dev/text) utterances of $(wc -l < data/dev/spk2utt) held-out speakers"
    echo "# (train: $(wc -l < data/train/text) utterances, $(wc -l < data/train_aug/text) after augmentation; corpus: ${corpus:-speech_commands}; $(date +%F))"
    echo
    kaldilite commands-results --commands "$lang_en/commands.txt" --target-fa $target_fa data/dev \
      $(for m in "${models[@]}"; do echo exp/$m; done)
    echo
    echo "# command acc: command utterances recognized as exactly that command (a rejection is an error)."
    echo "# FA unknown words: non-command words (fillers) of the unseen speakers that came out as a command; FR:"
    echo "# commands rejected. FA silence: background-noise clips that came out as a command. EER: where FA on"
    echo "# unknown words = missed commands, over the $rejection_score threshold. 12-class accuracy: 10 commands +"
    echo "# _unknown_ + _silence_ over all dev utterances (this dev set is mostly commands, not the balanced"
    echo "# test set of the literature). The threshold row is 2-fold cross-calibrated: the dev speakers are"
    echo "# split in two, each half is decided with the threshold calibrated on the other half (target FA"
    echo "# $target_fa on unknown words + silence), so no utterance is scored with a threshold tuned on its"
    echo "# own speaker; exp/<model>/graph_commands/rejection.json holds the threshold calibrated on all of dev."
    echo "# RTF: decoding with lattices + confidence (GMM scoring included), summed over jobs / audio duration."
  } > RESULTS
  cat RESULTS
  # recipes/commands/RESULTS holds the figures of the default (full) run only.
  if [ "$dir" = work ]; then cp RESULTS "$recipe_dir/RESULTS"; fi
fi
