#!/usr/bin/env bash
# The pruning-spaces claims on Fashion-MNIST (ResNet-20, torch engine), one part at a time. Every part is resumable:
# its campaign stores live in runs/ (working copies, ignored by git) and are packed into store/ (committed), so a part
# that does not finish in one sitting continues later from the committed store.
#
#   bash analysis/pruning-spaces-fmnist/run.sh claim1 25|50   search one regime (160 candidates, 3 rungs, finalists, reference)
#   bash analysis/pruning-spaces-fmnist/run.sh claim2 25|50   refine the claim-1 campaign, search child and parent again (fresh seeds, equal budget)
#   bash analysis/pruning-spaces-fmnist/run.sh claim3 25|50 [pruned]   a 15-epoch parent pruned by l1, taylor and bn-scale
#        (global allocation), fine-tuned, 5 seeds; then the finalists and uniform from scratch ("pruned": stop before)
#   bash analysis/pruning-spaces-fmnist/run.sh distill 25|50  issue 20's label-free compression of claim 3's parent (5 seeds),
#        L1 + fine-tuning at the distilled widths, and the distilled widths from scratch
#   bash analysis/pruning-spaces-fmnist/run.sh analyse        status, report and CSVs of every campaign present, and claim 3's
#        run JSONs (with recalibrate.ts's errors right after pruning), into results/
#   bash analysis/pruning-spaces-fmnist/run.sh pack|unpack    runs/ <-> store/*.tar.xz
#   bash analysis/pruning-spaces-fmnist/run.sh stop [PART]    end every sitting in flight (started with setsid), or PART's
#        (e.g. distill-r25), booking their compute in compute.tsv first; finished runs are already in store/
#
# WORKERS (default 2) trains that many trials at once; each trial uses one intra-op thread.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cli() { node "$root/bin/prunespace.js" "$@"; }
runs="$here/runs"
store="$here/store"
workers=${WORKERS:-2}
mkdir -p "$runs" "$store"

regime() {
  case "${1:-}" in 25|50) ;; *) echo "run.sh: regime must be 25 or 50, got '${1:-}'" >&2; exit 2 ;; esac
}

# CPU seconds (user + system) of this script's finished children so far, into $cpu. bash's `times` must run in this
# shell: in a pipe or $(...) it would report a fresh subshell, whose children have used nothing.
child_cpu() {
  times > "$runs/.times-$$"
  cpu=$(sed -n 2p "$runs/.times-$$" | awk '{ t = 0; for (i = 1; i <= NF; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%.0f", t }')
}

# Compute spent per sitting: one line per campaign call in compute.tsv (committed), so every part's core-hours add
# up across sittings. CPU time, not trial seconds: a paused or loaded machine inflates the latter.
account() {
  local name=$1 start=$2 cpu0=$3 rc=$4
  rm -f "$runs/.sitting-$name"
  child_cpu
  book "$name" "$start" "$(( cpu - cpu0 ))" "$workers" "$rc"
}

# One line of compute.tsv: part, start, wall seconds until now, CPU seconds, workers, exit code (or "stopped").
book() {
  [[ -f $here/compute.tsv ]] || printf 'part\tstarted_utc\twall_s\tcpu_s\tworkers\trc\n' > "$here/compute.tsv"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$(date -u -d "@$2" +%FT%TZ)" "$(( $(date +%s) - $2 ))" "$3" "$4" "$5" >> "$here/compute.tsv"
}

# A sitting of part NAME starts: sets $start and $cpu0 and leaves them in runs/.sitting-NAME, so that `run.sh stop` can
# book a sitting it cuts off (the sitting's own `account` never runs then). Two parts may sit at once.
begin_sitting() {
  start=$(date +%s)
  child_cpu
  cpu0=$cpu
  echo "$1 $start $cpu0 $$ $workers" > "$runs/.sitting-$1"
}

# Search a campaign file into runs/NAME, or resume it where a store already exists.
campaign() {
  local config=$1 name=$2 start cpu0 rc=0
  unpack_one "$name"
  begin_sitting "$name"
  if [[ -f "$runs/$name/campaign.json" ]]; then
    cli resume "$runs/$name" --workers "$workers" || rc=$?
  else
    cli search --config "$config" --out "$runs/$name" --workers "$workers" || rc=$?
  fi
  account "$name" "$start" "$cpu0" "$rc"
  pack_one "$name"
  return "$rc"
}

# Two archives per campaign: NAME.tar.xz, the store itself (database, campaign.json, CSVs: all that re-analysis reads,
# a few MB), and NAME-checkpoints.tar.xz, the rung checkpoints a resume continues from. The campaign deletes the
# checkpoints of candidates a rung stopped and of finished ones, so the second archive holds only what is still needed
# and is removed once nothing is.
pack_one() {
  local name=$1 dir="$runs/$1"
  [[ -d $dir ]] || return 0
  node -e 'const D=require("better-sqlite3");const db=new D(process.argv[1]);db.pragma("wal_checkpoint(TRUNCATE)");db.close()' "$dir/campaign.db"
  tar -C "$runs" --exclude="$name/checkpoints" -cJf "$store/$name.tar.xz.tmp" "$name" && mv "$store/$name.tar.xz.tmp" "$store/$name.tar.xz"
  if [[ -n $(ls -A "$dir/checkpoints" 2>/dev/null) ]]; then
    tar -C "$runs" -cJf "$store/$name-checkpoints.tar.xz.tmp" "$name/checkpoints" && mv "$store/$name-checkpoints.tar.xz.tmp" "$store/$name-checkpoints.tar.xz"
  else
    rm -f "$store/$name-checkpoints.tar.xz"
  fi
  echo "packed $name: $(du -h "$store/$name.tar.xz" | cut -f1)$([[ -f $store/$name-checkpoints.tar.xz ]] && echo ", checkpoints $(du -h "$store/$name-checkpoints.tar.xz" | cut -f1)")"
}

# Claim 3's runs are plain files, not campaigns: the parent model and the finished runs' JSONs and models go into
# store/NAME.tar.xz so that a sitting cut off mid-part loses only the run in flight (the last one lost the parent and
# all 15 pruned networks). Patterns match finished runs' JSONs (run.sh writes them last); a run's model directory
# beside its JSON goes in with it.
pack_files() {
  local name=$1 pattern f; shift
  local files=()
  for pattern in "$@"; do
    for f in $(cd "$runs" && compgen -G "$pattern" || true); do
      files+=("$f")
      [[ -d $runs/${f%.json} ]] && files+=("${f%.json}")
    done
  done
  [[ ${#files[@]} -gt 0 ]] || return 0
  tar -C "$runs" -cJf "$store/$name.tar.xz.tmp" "${files[@]}" && mv "$store/$name.tar.xz.tmp" "$store/$name.tar.xz"
  echo "packed $name: ${#files[@]} files, $(du -h "$store/$name.tar.xz" | cut -f1)"
}

unpack_files() {
  [[ -f "$store/$1.tar.xz" ]] && tar -C "$runs" --skip-old-files -xJf "$store/$1.tar.xz"
  return 0
}

unpack_one() {
  local name=$1
  if [[ ! -d "$runs/$name" && -f "$store/$name.tar.xz" ]]; then
    tar -C "$runs" -xJf "$store/$name.tar.xz"
    if [[ -f "$store/$name-checkpoints.tar.xz" ]]; then tar -C "$runs" -xJf "$store/$name-checkpoints.tar.xz"; fi
  fi
}

case "${1:-}" in
  claim1)
    regime "${2:-}"
    campaign "$here/campaign-$2.json" "claims-r$2"
    ;;
  claim2)
    regime "${2:-}"
    unpack_one "claims-r$2"
    child="$here/space-$2-child.json"
    [[ -f $child ]] || cli refine "$runs/claims-r$2" --out "$child"
    # The same search again from the child and from the parent space at equal budget (same candidates and rungs), with
    # fresh seeds; no reference and no finalists (claim 2 compares the populations).
    for which in child parent; do
      config="$here/campaign-$2-$which.json"
      [[ -f $config ]] || node -e '
        const fs = require("fs"), path = require("path");
        const [file, which, child, out] = process.argv.slice(1);
        const c = JSON.parse(fs.readFileSync(file, "utf8"));
        c.name = `${which}-r${c.seed}`;
        c.description = `Issue 24, claim 2: the claim-1 search again from the ${which} space, fresh seeds`;
        if (which === "child") c.space = path.relative(path.dirname(out), child);
        c.seed += 1000;
        c.reference = { seeds: 0 };
        c.rungs.finalists = 0;
        fs.writeFileSync(out, JSON.stringify(c, null, 2) + "\n");' "$here/campaign-$2.json" "$which" "$child" "$config"
      campaign "$config" "$which-r$2"
    done
    ;;
  claim3)
    regime "${2:-}"
    stage=${3:-all}
    case $stage in all|pruned) ;; *) echo "run.sh: claim3 stage must be all or pruned, got '$stage'" >&2; exit 2 ;; esac
    flops=$(node -e 'console.log(Number(process.argv[1])/100)' "$2")
    parent="$runs/parent-15ep"
    unpack_files parent-15ep
    unpack_files "pruned-r$2"
    unpack_files "scratch-r$2"
    if [[ ! -f "$parent/prunespace.json" ]]; then
      rm -rf "$parent"
      start=$(date +%s); child_cpu; cpu0=$cpu; rc=0
      # One run, so it gets every core as intra-op threads (full-width convolutions scale across them).
      cli train --net resnet20 --data fashion-mnist --no-augment --epochs 15 --batch 128 --lr 0.1 --nesterov \
        --backend torch --threads "$workers" --seed 0 --save "$parent" --json > "$runs/parent-15ep.json" || rc=$?
      account parent-15ep "$start" "$cpu0" "$rc"
      [[ $rc == 0 ]] || exit "$rc"
      pack_files parent-15ep parent-15ep.json
    fi
    # The pruned networks: every criterion x 5 seeds, WORKERS at a time, one thread each. A run is done when its
    # JSON is complete; a half-written one is redone.
    jobs_file="$runs/.claim3-jobs"
    : > "$jobs_file"
    for criterion in l1 taylor bn-scale; do
      for seed in 0 1 2 3 4; do
        out="$runs/pruned-r$2-$criterion-s$seed"
        [[ -s $out.json ]] || echo "$criterion $seed $out" >> "$jobs_file"
      done
    done
    prune_one() {
      rm -rf "$3" "$3.json"
      node "$root/bin/prunespace.js" prune --parent "$parent" --criterion "$1" --allocation global --flops "$flops" \
        --epochs 5 --lr 0.01 --no-augment --seed "$2" --backend torch --threads 1 --out "$3" --json > "$3.tmp" \
        && mv "$3.tmp" "$3.json" \
        && { flock "$runs/.pack.lock" bash -c 'pack_files "$@"' _ "pruned-r$regime" "pruned-r$regime-*.json" || true; }
    }
    regime=$2
    export -f prune_one pack_files; export root parent flops runs store regime
    rc=0
    if [[ -s $jobs_file ]]; then
      begin_sitting "pruned-r$2"
      xargs -P "$workers" -L 1 bash -c 'prune_one "$@"' _ < "$jobs_file" || rc=$?
      account "pruned-r$2" "$start" "$cpu0" "$rc"
    fi
    [[ $rc == 0 ]] || exit "$rc"
    [[ $stage == pruned ]] && exit 0
    # At equal total epochs (15 + 5): the claim-1 finalists and the uniform reference trained from scratch for 20.
    unpack_one "claims-r$2"
    : > "$jobs_file"
    node -e '
      const fs = require("fs");
      const rows = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => l.split(","));
      const head = rows.shift(), col = (n) => head.indexOf(n), groups = head.filter((h) => /^stage\d/.test(h));
      const seen = new Set();
      for (const r of rows) {
        if (r[col("role")] !== "finalist" && r[col("role")] !== "reference") continue;
        const widths = groups.map((g) => r[col(g)]).join(",");
        const name = r[col("role")] === "reference" ? "uniform" : `finalist-${r[col("finalist_of")]}`;
        if (!seen.has(name)) { seen.add(name); console.log(`${name} ${widths}`); }
      }' "$runs/claims-r$2/trials.csv" > "$runs/.claim3-nets"
    # Seed-major order: a sitting cut off part-way leaves every network with about as many seeds as the others.
    for seed in 0 1 2 3 4; do
      while read -r name widths; do
        out="$runs/scratch-r$2-$name-s$seed.json"
        [[ -s $out ]] || echo "$widths $seed $out" >> "$jobs_file"
      done < "$runs/.claim3-nets"
    done
    scratch_one() {
      node "$root/bin/prunespace.js" train --net resnet20 --widths "$1" --data fashion-mnist --no-augment --epochs 20 \
        --batch 128 --lr 0.1 --nesterov --backend torch --threads 1 --seed "$2" --json > "$3.tmp" && mv "$3.tmp" "$3" \
        && { flock "$runs/.pack.lock" bash -c 'pack_files "$@"' _ "scratch-r$regime" "scratch-r$regime-*.json" || true; }
    }
    export -f scratch_one
    rc=0
    if [[ -s $jobs_file ]]; then
      begin_sitting "scratch-r$2"
      xargs -P "$workers" -L 1 bash -c 'scratch_one "$@"' _ < "$jobs_file" || rc=$?
      account "scratch-r$2" "$start" "$cpu0" "$rc"
    fi
    exit "$rc"
    ;;
  distill)
    regime "${2:-}"
    # Issue 20's seed 002 at this scale: claim 3's converged parent compressed without labels to the regime's FLOPs
    # for claim 3's 5 fine-tuning epochs (distill's defaults: 2 students, logit + feature + mutual terms, Taylor
    # re-selection every 100 steps), then, so that allocation is not confounded, L1 pruning to each distilled
    # network's own widths with claim 3's fine-tuning, and those widths from scratch for claim 3's 20 epochs. Claim 3's
    # pruned and uniform runs share the parent, seeds and recipe, so they are the other rows of the comparison.
    flops=$(node -e 'console.log(Number(process.argv[1])/100)' "$2")
    parent="$runs/parent-15ep"
    unpack_files parent-15ep
    unpack_files "distill-r$2"
    [[ -f "$parent/prunespace.json" ]] || { echo "run.sh distill: claim 3's parent is missing: run 'run.sh claim3 $2 pruned' first" >&2; exit 2; }
    regime=$2
    export root parent flops runs store regime
    distilled_widths() {
      node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).widths.join(","))' "$runs/distill-r$regime-s$1.json"
    }
    # Every finished run of the part into its store; a failed pack leaves the runs to the next one.
    pack_distill() {
      flock "$runs/.pack.lock" bash -c 'pack_files "$@"' _ "distill-r$regime" "distill-r$regime-*.json" "l1dw-r$regime-*.json" \
        "scratchdw-r$regime-*.json" || true
    }
    # One chain per seed: the distilled network, then L1 at its widths (which need it). Finished steps are skipped.
    distill_chain() {
      local seed=$1 d="$runs/distill-r$regime-s$1" l="$runs/l1dw-r$regime-s$1" widths
      if [[ ! -s $d.json ]]; then
        rm -rf "$d"
        node "$root/bin/prunespace.js" distill --parent "$parent" --flops "$flops" --data fashion-mnist --epochs 5 --no-augment --seed "$seed" \
          --backend torch --threads 1 --evaluate --json --out "$d" > "$d.tmp" && mv "$d.tmp" "$d.json" || return 1
      fi
      widths=$(distilled_widths "$seed")
      if [[ ! -s $l.json ]]; then
        rm -rf "$l"
        node "$root/bin/prunespace.js" prune --parent "$parent" --criterion l1 --widths "$widths" --epochs 5 --lr 0.01 \
          --no-augment --seed "$seed" --backend torch --threads 1 --out "$l" --json > "$l.tmp" && mv "$l.tmp" "$l.json" || return 1
      fi
      pack_distill
    }
    # The distilled widths from scratch, with claim 3's scratch recipe.
    scratch_distilled() {
      local seed=$1 out="$runs/scratchdw-r$regime-s$1.json" widths
      widths=$(distilled_widths "$seed")
      node "$root/bin/prunespace.js" train --net resnet20 --widths "$widths" --data fashion-mnist --no-augment --epochs 20 \
        --batch 128 --lr 0.1 --nesterov --backend torch --threads 1 --seed "$seed" --json > "$out.tmp" && mv "$out.tmp" "$out" \
        && pack_distill
    }
    export -f distill_chain scratch_distilled distilled_widths pack_distill pack_files
    chains=() scratch=()
    for seed in 0 1 2 3 4; do
      [[ -s $runs/distill-r$2-s$seed.json && -s $runs/l1dw-r$2-s$seed.json ]] || chains+=("$seed")
      [[ -s $runs/scratchdw-r$2-s$seed.json ]] || scratch+=("$seed")
    done
    [[ ${#chains[@]} -gt 0 || ${#scratch[@]} -gt 0 ]] || exit 0
    begin_sitting "distill-r$2"
    rc=0
    # Every chain before any scratch run: the label-free rows come first if a sitting is cut off.
    if [[ ${#chains[@]} -gt 0 ]]; then printf '%s\n' "${chains[@]}" | xargs -P "$workers" -L 1 bash -c 'distill_chain "$@"' _ || rc=$?; fi
    if [[ $rc == 0 && ${#scratch[@]} -gt 0 ]]; then printf '%s\n' "${scratch[@]}" | xargs -P "$workers" -L 1 bash -c 'scratch_distilled "$@"' _ || rc=$?; fi
    account "distill-r$2" "$start" "$cpu0" "$rc"
    exit "$rc"
    ;;
  analyse)
    mkdir -p "$here/results"
    for regime in 25 50; do
      # Either kind of run is enough (ls of both globs fails while the scratch runs are still to come).
      compgen -G "$runs/pruned-r$regime-*.json" > /dev/null || compgen -G "$runs/scratch-r$regime-*.json" > /dev/null || continue
      mkdir -p "$here/results/claim3-r$regime"
      cp "$runs/parent-15ep.json" "$here/results/claim3-r$regime/"
      for f in "$runs"/pruned-r$regime-*.json "$runs"/scratch-r$regime-*.json; do
        [[ -f $f ]] && cp "$f" "$here/results/claim3-r$regime/$(basename "$f" | sed "s/-r$regime-/-/")"
      done
      # The error right after pruning with BN re-estimated, for pruned runs that predate prune recording it.
      if compgen -G "$runs/pruned-r$regime-*.json" > /dev/null; then
        (cd "$root" && node --import tsx "$here/recalibrate.ts" "$regime")
      fi
    done
    for regime in 25 50; do
      compgen -G "$runs/distill-r$regime-*.json" > /dev/null || continue
      mkdir -p "$here/results/distill-r$regime"
      for f in "$runs"/distill-r$regime-*.json "$runs"/l1dw-r$regime-*.json "$runs"/scratchdw-r$regime-*.json; do
        [[ -f $f ]] && cp "$f" "$here/results/distill-r$regime/$(basename "$f" | sed "s/-r$regime-/-/")"
      done
    done
    for dir in "$runs"/claims-r* "$runs"/child-r* "$runs"/parent-r*; do
      [[ -d $dir ]] || continue
      name=$(basename "$dir")
      cli status "$dir" > "$here/results/$name-status.txt"
      cp "$dir/trials.csv" "$here/results/$name-trials.csv"
      cp "$dir/trials.jsonl" "$here/results/$name-trials.jsonl"
      compare=()
      if [[ $name == child-r* ]]; then compare=(--compare "$runs/parent-${name#child-}"); fi
      cli report "$dir" --out "$here/results/$name" "${compare[@]}"
    done
    ;;
  stop)
    # runs/.sitting is the single-sitting file of scripts before 2026-12-07's second stop.
    # With a part's name (e.g. distill-r25), only that part's sitting.
    sittings=$(compgen -G "$runs/.sitting${2:+-$2}*" || true)
    [[ -n $sittings ]] || { echo "run.sh stop: no sitting${2:+ of $2} in flight (no $runs/.sitting-${2:-*})" >&2; exit 2; }
    for file in $sittings; do
      read -r name start cpu0 pid sat_workers < "$file"
      pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')
      if [[ $pgid != "$pid" ]]; then
        echo "run.sh stop: the sitting $name (pid $pid) is gone or was not started with setsid; stop it by hand" >&2
        continue
      fi
      # CPU of the whole tree: each live process's own time plus that of the children it has reaped (/proc stat
      # fields 14-17, clock ticks), less what the sitting's shell had reaped before it began.
      ticks=0
      for p in $(ps -e -o pid=,pgid= | awk -v g="$pgid" '$2 == g { print $1 }'); do
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
        ticks=$(( ticks + t ))
      done
      kill -TERM -- "-$pgid"
      cpu_s=$(( ticks / $(getconf CLK_TCK) - cpu0 ))
      book "$name" "$start" "$cpu_s" "${sat_workers:-$workers}" stopped
      rm -f "$file"
      echo "stopped $name after $(( $(date +%s) - start )) s, $cpu_s CPU seconds (booked in compute.tsv)"
    done
    ;;
  pack)
    for dir in "$runs"/*/; do [[ -f "$dir/campaign.json" ]] && pack_one "$(basename "$dir")"; done
    ;;
  unpack)
    for f in "$store"/*.tar.xz; do [[ -f $f && $f != *-checkpoints.tar.xz ]] && unpack_one "$(basename "$f" .tar.xz)"; done
    ;;
  *)
    sed -n '2,15p' "$0" >&2
    exit 2
    ;;
esac
