"""How long the landings of `capped_overturn200`'s preference runs stand, run by run
(docs/benchmarks/tasks.md, "The best arm run again"). Run from the repository root:

    python docs/benchmarks/data/backflip_landing_modes.py > docs/benchmarks/data/backflip_landing_modes.csv

For each run: its clean flips per episode and the scripted person's return (the arm's
rows CSV: 10 episodes), and from its flights (the arm's landings CSV: one episode, seed
10000) the number of backward flights of 0.8-1.1 turns and the median steps each stands
upright after it lands (the measure asks for 25)."""

import csv
import re
import statistics

DATA = "docs/benchmarks/data"
ARMS = {  # arm: (rows CSV, landings CSV)
    "best arm": ("backflip_capped_explore.csv", "backflip_capped_explore_landings.csv"),
    "labels sooner": ("backflip_capped_d05.csv", "backflip_capped_d05_landings.csv"),
    "2M steps": ("backflip_capped_2M.csv", "backflip_capped_2M_landings.csv"),
    "best arm again": ("backflip_capped_repeat.csv", "backflip_capped_repeat_landings.csv"),
}

print("arm,run,clean_flips,scripted_return,backward_flights,median_upright_steps_after")
for arm, (rows_csv, landings_csv) in ARMS.items():
    flips = {}
    for row in csv.DictReader(open(f"{DATA}/{rows_csv}")):
        if row["arm"] == "trained" and row["measure_name"] == "clean flips per episode":
            out = re.search(r"--out \S+/(r\d+)\b", row["command"])  # repeats: r1, r2, ...
            name = f"{row['task']}-s{row['seed']}"
            flips[f"{out.group(1)}/{name}" if out else name] = (
                f"{row['measure_mean']},{row['scripted_return_mean']}"
            )
    flights: dict[str, list[int]] = {}
    for row in csv.DictReader(open(f"{DATA}/{landings_csv}")):
        if 0.8 <= float(row["turns_in_air"]) <= 1.1:
            flights.setdefault(row["run"], []).append(int(row["upright_steps_after"]))
    for run, upright in flights.items():
        # a repeat's run is named by its folder too (r1/NAME) in the rows, and in the
        # landings where two repeats of one name were traced together
        key = run if run in flips else next(k for k in flips if k.endswith("/" + run))
        print(f"{arm},{run},{flips[key]},{len(upright)},{statistics.median(upright):g}")
