#!/usr/bin/env bash
# Digits recipe on the Free Spoken Digit Dataset (FSDD): real recorded speech, 8 kHz, six male
# speakers saying zero..nine. Kaldi's classic chain: data -> lang -> MFCC + CMVN -> monophone
# GMM-HMM -> HCLG -> decode -> WER, each stage resumable (--stage N, --stop-stage N).
#
#   ./run.sh                                   # everything, speaker-independent split
#   ./run.sh --split dependent                 # takes 0-4 test, 5-49 train (FSDD's own split)
#   ./run.sh --stage 4                         # re-run from the mono graph and decode
#   ./run.sh --corpus /path/to/fsdd            # a local copy (the folder with recordings/)
#
# Without --corpus the recipe uses $KALDILITE_DATA/fsdd (or ../shared/data/fsdd beside the
# repository), and otherwise downloads the dataset's public archive into downloads/.
# The whole script is one { ... } group, which bash reads to its end before running any of it: an
# edit saved while a run is under way changes the next run, not this one (a plain script is read as
# it runs, and an edit shifts the text under the offset bash resumes at: tests/recipes/
# test_run_sh_edited_while_running.py).
{
set -euo pipefail

stage=0
stop_stage=100
corpus=
split=independent      # independent: train george jackson lucas nicolas, test theo yweweler
nj=2
train_takes=           # keep only this many takes per speaker and digit (quick runs, CI)
test_takes=
totgauss=1000          # as steps/train_mono.sh
tri1_leaves=2000       # train_deltas.sh NUM_LEAVES TOTGAUSS (ten words: the tree stops near 140 leaves
tri1_gauss=10000       # by its likelihood threshold; the Gaussians stop where min-count stops them,
                       # ~4.4k; held-out training speakers liked this over 2000/5000, 2000/1200, 300/10000)
tri2b_leaves=2500      # train_lda_mllt.sh NUM_LEAVES TOTGAUSS
tri2b_gauss=15000
tri3b_leaves=2500      # train_sat.sh NUM_LEAVES TOTGAUSS
tri3b_gauss=15000
tri_var_floor=3.0      # stages 5-7, independent split: floor each Gaussian variance at this x the pooled
                       # within-Gaussian variance (Kaldi: absolute floor only, 0). Four training speakers give
                       # Gaussians far too sharp for a new voice: on unseen speakers the right word's path falls
                       # out of the beam (tri2b: 30 deletions at beam 13). Held-out training speakers (train on
                       # three, decode the fourth; mean WER tri1/tri2b/tri3b): 0: 44.1/60.6/30.0, 1.0: 28.5/37.1/19.2,
                       # 1.5: 24.7/31.0/14.5, 2.0: 23.2/24.5/10.7, 3.0: 20.3/23.2/9.4, 4.0: 19.6/23.3/10.2 (chosen by
                       # tri3b; per fold tri3b moves by up to 10 points between floors: one speaker's word flips)
tri_var_floor_dependent=2.0  # the same for the dependent split, whose test speakers are in training. Its own
                       # held-out takes (train on takes 10-49, decode 5-9; errors of 300 tri1/tri2b/tri3b SI pass/
                       # tri3b): 0: 2/2/2/2, 1.0: 3/2/2/2, 1.5: 3/2/2/2, 2.0: 3/2/3/1, 3.0: 3/3/5/3 (all nicolas'
                       # shortest "six" takes); chosen by tri3b as above (the spread is one or two utterances)
beam=13.0
acwt=0.1
nnet_gmm=tri3b         # stage 8: the GMM system whose alignments, tree and graph the DNN uses
nnet_speeds=0.8,0.9,1.0,1.1,1.2  # stage 8: the DNN trains on these speed-perturbed copies ("" = none)
nnet_noise_snrs=20:15:10:5       # stage 8: plus one copy of them with background noise at these SNRs ("" = none)
nnet_noise_dir=                  # its noise clips (default: speech_commands/_background_noise_ of the shared data)
nnet_fmllr=true        # stage 8: true: the DNN reads $nnet_gmm's speaker-adapted features (LDA+MLLT, then per-speaker
                       # fMLLR: align-fmllr's transforms in training, decode-fmllr's at test time), as Kaldi's nnet2
                       # recipes on tri3b; false: speaker-independent MFCC + CMVN input (no transforms needed: what
                       # online decoding and the commands recipe use)
nnet_first_pass=dnn    # stage 8 with nnet_fmllr=true: where the test speakers' fMLLR transforms come from. dnn: a
                       # speaker-independent DNN (exp/nnet2_si) decodes first and its lattices replace tri3b's SI GMM pass
                       # (decode-fmllr --si-dir -> exp/$nnet_gmm/decode_test_nnet2_si); gmm: tri3b's own two-pass decode
                       # (exp/$nnet_gmm/decode_test, Kaldi's nnet2 recipe). Held-out training speakers lucas / nicolas
                       # (errors/500, see conf/nnet2.conf): tri3b 31 / 70, SI DNN 152 / 59, fMLLR DNN on tri3b's
                       # transforms 30 / 77, on the SI DNN's 19 / 43 (tri3b itself on them: 15 / 40); with
                       # nnet_fmllr_noise=false 24 / 94 vs 12 / 47. dnn trains two networks (SI + fMLLR), gmm one
nnet_fmllr_noise=false # stage 8 with nnet_fmllr=true: the fMLLR DNN trains on the noisy copy too (true) or on the clean
                       # speed copies only (false; the SI DNN always takes the noisy copy). Held-out lucas / nicolas,
                       # both on the SI DNN's test transforms (errors/500; fold CPU s of the fMLLR DNN): true, 4 epochs
                       # 19 / 43 (~160 s); true, 2 epochs 22 / 45 (82 / 104 s); false, 4 epochs 12 / 47 (79 / 94 s);
                       # false, 8 epochs nicolas 55. false halves the fMLLR DNN's cost and skips align-fmllr of the
                       # combined data, so SI DNN + fMLLR DNN fit Kaldi's 270 s training budget (see RESULTS)
dir=                   # where data/ exp/ mfcc/ go (default: work_<split> in this folder)
help_message="Usage: $0 [--stage N] [--stop-stage N] [--split independent|dependent] [--corpus DIR] [--nj N]
  e.g.: $0 --split dependent --stage 3"

cd "$(dirname "$0")"
. ../utils/path.sh
. ./cmd.sh            # KALDILITE_CMD: where the --nj jobs run (local or slurm)
. ../utils/parse_options.sh

recipe_dir=$(pwd)
[ -n "$dir" ] || dir=work_$split
mkdir -p "$dir"
cd "$dir"
lang_en="$KALDILITE_REPO/lang/en"
var_floor=$tri_var_floor
[ "$split" = dependent ] && var_floor=$tri_var_floor_dependent
mfcc_conf="$recipe_dir/conf/mfcc.conf"

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: corpus and data directories ($split split)"
  opts=()
  [ -n "$train_takes" ] && opts+=(--train-takes "$train_takes")
  [ -n "$test_takes" ] && opts+=(--test-takes "$test_takes")
  corpus_dir=$(kaldilite download-fsdd ${corpus:+--source "$corpus"} downloads)
  kaldilite prepare-fsdd --split "$split" "${opts[@]}" "$corpus_dir" data
  for x in train test; do kaldilite data validate --no-feats data/$x; done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: lang (CMUdict pronunciations for zero..nine, one digit per utterance)"
  printf '%s\n' zero one two three four five six seven eight nine > data/local_digits.txt
  kaldilite prepare-dict --lexicon "$lang_en/lexicon.txt" data/local_digits.txt data/local/dict
  kaldilite prepare-lang data/local/dict "<UNK>" data/local/lang_tmp data/lang
  kaldilite make-grammar data/local_digits.txt data/lang data/lang_digits
  kaldilite validate-lang data/lang_digits
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: MFCC + per-speaker CMVN stats"
  for x in train test; do
    kaldilite make-mfcc --config "$mfcc_conf" --nj $nj data/$x exp/make_mfcc/$x mfcc
    kaldilite compute-cmvn-stats data/$x exp/make_mfcc/$x mfcc
  done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: monophone training"
  # --align-transition-probs topology: realign with the topology's initial transition probs
  # (Kaldi re-adds the model's each time). FSDD is trimmed; with the model's own probs
  # realignment puts optional silence on ~2x as many utterance edges. Dev (train on 3 of the 4
  # training speakers, decode the 4th, avg WER): 38.5% -> 35.8% (with --norm-vars true: 29.0% -> 26.2%).
  kaldilite train-mono --nj $nj --totgauss $totgauss --align-transition-probs topology data/train data/lang exp/mono
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: mono decoding graph, decode and score"
  kaldilite mkgraph data/lang_digits exp/mono exp/mono/graph
  kaldilite decode --nj $nj --beam $beam --acwt $acwt exp/mono/graph data/test exp/mono/decode_test
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log "Stage 5: tri1 (deltas + triphone tree) on the mono alignments, graph, decode"
  kaldilite align --nj $nj data/train data/lang exp/mono exp/mono_ali
  kaldilite train-deltas --nj $nj --var-floor $var_floor $tri1_leaves $tri1_gauss \
    data/train data/lang exp/mono_ali exp/tri1
  kaldilite mkgraph data/lang_digits exp/tri1 exp/tri1/graph
  kaldilite decode --nj $nj --beam $beam --acwt $acwt exp/tri1/graph data/test exp/tri1/decode_test
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: tri2b (splice +-3, LDA to 40, MLLT) on the tri1 alignments, graph, decode"
  kaldilite align --nj $nj data/train data/lang exp/tri1 exp/tri1_ali
  kaldilite train-lda-mllt --nj $nj --var-floor $var_floor \
    --splice-opts "--left-context=3 --right-context=3" \
    $tri2b_leaves $tri2b_gauss data/train data/lang exp/tri1_ali exp/tri2b
  kaldilite mkgraph data/lang_digits exp/tri2b exp/tri2b/graph
  kaldilite decode --nj $nj --beam $beam --acwt $acwt exp/tri2b/graph data/test exp/tri2b/decode_test
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  log "Stage 7: tri3b (SAT, per-speaker fMLLR) on the tri2b alignments, graph, two-pass fMLLR decode"
  kaldilite align --nj $nj data/train data/lang exp/tri2b exp/tri2b_ali
  kaldilite train-sat --nj $nj --var-floor $var_floor $tri3b_leaves $tri3b_gauss \
    data/train data/lang exp/tri2b_ali exp/tri3b
  kaldilite mkgraph data/lang_digits exp/tri3b exp/tri3b/graph
  # speaker-independent first pass -> exp/tri3b/decode_test.si, adapted result -> exp/tri3b/decode_test
  kaldilite decode-fmllr --nj $nj --beam $beam --first-beam $beam --acwt $acwt exp/tri3b/graph data/test \
    exp/tri3b/decode_test
fi

# Stage 8 (nnet2): train on a GMM system's alignments, decode into exp/nnet2/decode_test.

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log "Stage 8: nnet2 p-norm DNN on $nnet_gmm alignments (speeds ${nnet_speeds:-1.0}, noise SNRs ${nnet_noise_snrs:-none}; fMLLR input: $nnet_fmllr), decode"
  [ -f exp/$nnet_gmm/final.mdl ] || { echo "$0: exp/$nnet_gmm/final.mdl missing; run its stage first" >&2; exit 1; }
  # Guards: a re-run of this stage (e.g. after editing conf/nnet2.conf) keeps the perturbed
  # features and the alignments when they are newer than what they were made from.
  train=data/train
  if [ -n "$nnet_speeds" ]; then
    # Speed perturbation as Kaldi's perturb_data_dir_speed_3way.sh, with more factors: every copy
    # is a new "speaker" (sp<factor>-* ids, own CMVN stats), aligned with the same GMM system.
    # With four training speakers this is what carries the DNN across speakers (held-out
    # training speaker nicolas: none 25.2%, 3 factors 22.6%, 5 factors 20.0%; see conf/nnet2.conf).
    train=data/train_sp
    if ! [ $train/cmvn.scp -nt data/train/feats.scp ] || [ "$(cat $train/.speeds 2>/dev/null)" != "$nnet_speeds" ]; then
      kaldilite perturb-data-dir-speed $nnet_speeds data/train $train
      kaldilite make-mfcc --config "$mfcc_conf" --nj $nj $train exp/make_mfcc/train_sp mfcc
      kaldilite compute-cmvn-stats $train exp/make_mfcc/train_sp mfcc
      echo "$nnet_speeds" > $train/.speeds
    fi
  fi
  ali_dir=exp/${nnet_gmm}_ali_$(basename $train)
  if ! [ $ali_dir/ali.1.gz -nt exp/$nnet_gmm/final.mdl ] || ! [ $ali_dir/ali.1.gz -nt $train/feats.scp ]; then
    if [ -f exp/$nnet_gmm/final.alimdl ]; then   # SAT: per-speaker fMLLR alignment
      kaldilite align-fmllr --nj $nj $train data/lang exp/$nnet_gmm $ali_dir
    else
      kaldilite align --nj $nj $train data/lang exp/$nnet_gmm $ali_dir
    fi
  fi
  nnet_train=$train
  if [ -n "$nnet_noise_snrs" ]; then
    # A copy of the training data with background noise (Kaldi's steps/data/augment_data_dir.py
    # --bg-snrs), combined with the clean data. Noise does not move frames, so each noisy copy
    # trains on its clean source's alignment (train-nnet2 finds it through utt2uniq). Held-out
    # training speakers (train on three, decode the fourth), with conf/nnet2.conf's --update rms:
    # george/jackson/lucas/nicolas 17.2/24.6/33.6/22.0% -> 20.4/22.6/19.2/9.8% (mean 24.4 -> 18.0%)
    # at the same training cost (half the epochs). It does not help every voice: george and, on
    # the test set, yweweler get worse (see RESULTS).
    noise_dir=${nnet_noise_dir:-${KALDILITE_DATA:-$KALDILITE_REPO/../shared/data}/speech_commands/_background_noise_}
    if [ -d "$noise_dir" ]; then
      if ! [ ${train}_noise/cmvn.scp -nt $train/feats.scp ] || [ "$(cat ${train}_noise/.snrs 2>/dev/null)" != "$nnet_noise_snrs" ]; then
        kaldilite add-noise-data-dir --bg-noise-dir "$noise_dir" --bg-snrs $nnet_noise_snrs --utt-prefix noise \
          $train ${train}_noise
        kaldilite make-mfcc --config "$mfcc_conf" --nj $nj ${train}_noise exp/make_mfcc/$(basename $train)_noise mfcc
        kaldilite compute-cmvn-stats ${train}_noise exp/make_mfcc/$(basename $train)_noise mfcc
        echo "$nnet_noise_snrs" > ${train}_noise/.snrs
      fi
      nnet_train=${train}_noise_combined
      kaldilite data combine $nnet_train $train ${train}_noise
    else
      log "no noise clips at $noise_dir (set --nnet-noise-dir): training without the noisy copy"
    fi
  fi
  if [ "$nnet_fmllr" != true ]; then
    kaldilite train-nnet2 --config "$recipe_dir/conf/nnet2.conf" $nnet_train data/lang $ali_dir exp/nnet2
    kaldilite decode-nnet2 --nj $nj --acwt $acwt exp/$nnet_gmm/graph data/test exp/nnet2/decode_test
  else
    # steps/nnet2/get_egs2.sh with feat_type=lda: the alignment dir's final.mat and trans.* (here
    # --transform-dir); steps/nnet2/decode.sh --transform-dir at test time.
    [ -f exp/$nnet_gmm/final.alimdl ] || { echo "$0: nnet_fmllr=true needs a SAT system, exp/$nnet_gmm has no final.alimdl (or set --nnet-fmllr false)" >&2; exit 1; }
    trans_dir=$ali_dir
    fmllr_train=$train
    if [ "$nnet_fmllr_noise" = true ] && [ "$nnet_train" != "$train" ]; then
      fmllr_train=$nnet_train
      # the noisy copies are speakers of their own: align-fmllr on the combined data gives every
      # speaker its transform (the noisy copies still train on their clean source's alignment)
      trans_dir=exp/${nnet_gmm}_ali_$(basename $nnet_train)
      if ! [ $trans_dir/trans.1 -nt $ali_dir/ali.1.gz ] || ! [ $trans_dir/trans.1 -nt ${train}_noise/feats.scp ]; then
        kaldilite align-fmllr --nj $nj $nnet_train data/lang exp/$nnet_gmm $trans_dir
      fi
    fi
    if [ "$nnet_first_pass" = dnn ]; then
      kaldilite train-nnet2 --config "$recipe_dir/conf/nnet2.conf" $nnet_train data/lang $ali_dir exp/nnet2_si
      kaldilite decode-nnet2 --nj $nj --acwt $acwt --lattice-beam 6.0 exp/$nnet_gmm/graph data/test exp/nnet2_si/decode_test
      test_trans=exp/$nnet_gmm/decode_test_nnet2_si
      kaldilite decode-fmllr --nj $nj --beam $beam --acwt $acwt --model-dir exp/$nnet_gmm --si-dir exp/nnet2_si/decode_test \
        exp/$nnet_gmm/graph data/test $test_trans
    else
      test_trans=exp/$nnet_gmm/decode_test
      [ -f $test_trans/trans.1 ] || { echo "$0: $test_trans/trans.1 missing; run stage 7 (decode-fmllr) first" >&2; exit 1; }
    fi
    kaldilite train-nnet2 --config "$recipe_dir/conf/nnet2.conf" --transform-dir $trans_dir $fmllr_train data/lang $ali_dir exp/nnet2
    kaldilite decode-nnet2 --nj $nj --acwt $acwt --transform-dir $test_trans exp/$nnet_gmm/graph data/test exp/nnet2/decode_test
  fi
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  log "Stage 9: results"
  {
    echo "# $split split: train $(wc -l < data/train/text) utts, test $(wc -l < data/test/text) utts ($(date +%F))"
    for x in exp/*/decode*; do
      [ -f "$x/wer" ] && echo "$(grep '%WER' "$x/wer") $split/$x"
    done
    # The peer: Kaldi built on this machine kind, its standard recipes, exactly these splits.
    case $split in
      independent) echo "# Kaldi: mono 8.9, tri1 10.4, tri2b 11.2, tri3b 3.8 (SI first pass 8.4), nnet2 3.7 %WER" ;;
      dependent) echo "# Kaldi: mono 0.33, tri1 0.33, tri2b 0, tri3b 0 %WER" ;;
    esac
  } > RESULTS
  cat RESULTS
  # recipes/digits/RESULTS holds the latest figures of every split run in the default work
  # dirs (runs with --dir elsewhere, such as the tests' reduced runs, keep theirs to themselves).
  if [ "$(cd .. && pwd)" = "$recipe_dir" ]; then
    cat "$recipe_dir"/work_*/RESULTS > "$recipe_dir/RESULTS.tmp" && mv "$recipe_dir/RESULTS.tmp" "$recipe_dir/RESULTS"
  fi
fi
exit  # the end of the group opened above set -euo pipefail: nothing after it is read
}
