"""The words on screen: what each page answers and what each chart means, for business viewers.

Texts that name scenarios take the experiment's own noun (`Noun`): countries for the simulator,
city levels for Taobao, whatever a bring-your-own schema calls them ("scenario" by default)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Noun:
    one: str = "scenario"
    many: str = "scenarios"

    @property
    def One(self) -> str:  # noqa: N802  (capitalised form for titles)
        return self.one[:1].upper() + self.one[1:]

    @property
    def Many(self) -> str:  # noqa: N802
        return self.many[:1].upper() + self.many[1:]


def app_intro(n: Noun) -> str:
    return f"""
**What this dashboard answers.** A shop serves many *scenarios* — here {n.many} — and wants to
predict which ad or product each visitor will click. One model per {n.one} wastes what {n.many}
have in common; one model for everybody blurs what makes each {n.one} special. **SAML** trains one
branch per {n.one} and lets each branch *listen* to the branches most similar to it. This
dashboard shows:

1. **Does it predict better?** Accuracy (AUC) of SAML against baselines — one model for all
   {n.many} (*BST*), one separate model per {n.one} (*BST-Individual*), a simple logistic
   regression, and the usual multi-scenario models when trained — overall and per {n.one}.
2. **Which {n.many} behave alike?** How much each {n.one}'s branch listens to every other
   (the *similarity coefficient α*) and how much it borrows at all (the *gate coefficient g*).
3. **What did the model learn inside?** A 2-D map of the branches' internal representations.
4. **Try it yourself:** retrain with other settings (unless this is a read-only demo).
"""


def glossary(n: Noun) -> str:
    return f"""
- **AUC** — chance that the model ranks a random clicked item above a random non-clicked one
  (0.5 = guessing, 1.0 = perfect). Small gains matter: +0.01 AUC is large in advertising.
- **Within-{n.one} AUC** (the headline) — the AUC inside each {n.one}, averaged with weights by
  test samples. Knowing only which {n.one} clicks more earns nothing on it (0.5).
- **Pooled AUC** — all {n.many} ranked together: it also rewards knowing which {n.one} clicks
  more, which the *{n.one} click rate only* reference row shows on its own.
- **Reference rows** — no training: every sample scored by its {n.one}'s click rate in the
  training data (*{n.one} click rate only*), or by the overall training click rate (*constant*).
  A model that does not beat them has learned nothing beyond base rates.
- **Logloss** — how far predicted click probabilities are from what happened (lower is better).
- **Verdict vs BST** — from a paired statistical test on the same test samples, using every
  seed (the AUC differences averaged over model seeds, with their spread; independent data seeds
  combined): *better* / *worse* when the test says so (p < 0.05 after a Holm correction for
  testing every {n.one}), else *no detectable difference*; *n/a* where a test split has fewer
  than 10 clicks or fewer than 10 non-clicks (too few for the test; the counts are given).
- **RelaImpr** — improvement over BST relative to BST's distance from guessing:
  ((AUC − 0.5) / (AUC of BST − 0.5) − 1) × 100 %, on the within-{n.one} AUC. Shown only where
  BST is clearly better than guessing (its 95 % interval above 0.5); near 0.5 the ratio is
  meaningless.
- **Flags** — an AUC whose 95 % interval lies entirely below 0.5 (worse than guessing), a logloss
  worse than the constant reference's (the probabilities are worse than predicting the average).
- **α (similarity coefficient)** — for a sample of {n.one} s, how much weight s's branch gives to
  each other branch; the weights over the other branches add up to 1.
- **g (gate coefficient)** — how much of that borrowed knowledge a branch actually adds (0 = none).
"""


OVERALL_TABLE = ("Each row is one model; with several seeds, the mean over its runs (± std). Verdict: "
                 "the paired test against BST on the same test samples with every seed, not one lucky "
                 "run. The last rows are the references, computed without training.")
OVERALL_TABLE_MORE = ("Logloss and how each model trained (epochs, early stopping, time) are in the box above; the "
                      "settings every model shared are below.")


def within_auc(n: Noun) -> str:
    return (f"Within-{n.one} AUC leads: how well a model ranks clicks inside each {n.one}, averaged with weights by "
            f"test samples. A predictor that only knows which {n.one} clicks more scores exactly 0.5 on it, while "
            f"the pooled AUC (all {n.many} ranked together) already credits that knowledge, so it comes second.")


def headline_chart(n: Noun, multi: bool) -> str:
    spread = ("whiskers: ± one standard deviation over runs (model and data seeds)" if multi else
              "whiskers: 95 % confidence interval")
    return (f"Each model's AUC within each {n.one}, averaged with weights by test samples ({spread}). The dashed "
            f"line is what scoring every sample by its {n.one}'s click rate earns (0.5): a model at it has learned "
            f"nothing beyond which {n.one} clicks more. The sentence above says which differences are significant.")


def pooled_auc(n: Noun) -> str:
    return (f"AUC over all {n.many} ranked together: it also rewards knowing which {n.one} clicks more (see the "
            f"{n.one}-click-rate reference row).")

TRAINING_CURVES = {
    "valid_auc": ("Validation AUC after every epoch. Training stops once it has not improved for a number "
                  "of epochs that grows as the validation set shrinks (few clicks make the AUC jumpy); the "
                  "model from the best epoch is the one tested."),
    "train_loss": ("Training loss (average over the epoch's batches, lower is better). A loss that keeps "
                   "falling while validation AUC does not rise is the model memorising its training data."),
}


def per_scenario_bars(n: Noun, multi_seed: bool, focus: str, reference: str, marked: bool) -> str:
    """The caption under the per-scenario chart; `marked`: the chart carries ★/▼ verdict marks."""
    bars = ("the whiskers show the spread over seeds (± one standard deviation)" if multi_seed else
            "the whiskers are 95 % confidence intervals")
    marks = (f" ★ marks the {n.many} where the paired test says {focus} beats {reference}, ▼ where it is worse "
             f"(p < 0.05 after correcting for testing {n.many} one by one); elsewhere the difference may be luck."
             if marked else f" In no {n.one} does the paired test find {focus} significantly better or worse than "
                            f"{reference} (p < 0.05 after correcting for testing {n.many} one by one).")
    return f"For every {n.one}, how well each model ranks clicks; higher is better, {bars}.{marks}"


def oracle(drawn: bool) -> str:
    """Said only under a chart that draws the oracle dashes (simulated data knows them)."""
    return (" The black dash is the best accuracy any model could reach on this simulated data (the oracle)."
            if drawn else "")


def relaimpr(n: Noun) -> str:
    return (f"Gain of each model over BST in each {n.one}, in percent of BST's distance from guessing. "
            f"Left out (n/a) where BST itself is not clearly better than guessing: there the ratio says "
            f"nothing.")


def traffic(n: Noun) -> str:
    return (f"How much of the training data each {n.one} contributes. Small {n.many} have little data of "
            f"their own: they are the ones expected to profit from learning with similar {n.many}.")


def heatmap_raw(n: Noun, even: float) -> str:
    return (f"Read a row: for samples from that {n.one}, how much its branch listens to each other branch "
            f"(α; each row adds up to 1, so an even split is {even:.3f} per cell). The colour is centred on "
            f"that even split: red = listens more than even, blue = less. Most of the pattern is usually "
            f"*columns*: branches every {n.one} listens to — see the split below.")


def heatmap_pairwise(n: Noun) -> str:
    return (f"The same α with each branch's overall pull (the column effect) and each {n.one}'s own level "
            f"(the row effect) taken out: what is left is how much more (red) or less (blue) a {n.one} listens "
            f"to one particular other {n.one} than their overall levels predict. This is the part that can mean "
            f"'these two {n.many} are alike'.")


def cdf(n: Noun) -> str:
    return (f"Each curve is one other {n.one}. A curve further to the right means the chosen {n.one} listens "
            f"to that {n.one} more strongly for most of its samples (the paper's Figure 3).")


def gates(n: Noun) -> str:
    return (f"The gate g decides how much a branch adds of what it hears from the other branches. Boxes: "
            f"the spread of g over each {n.one}'s test samples. The dashes mark where every gate started "
            f"before training: read a {n.one}'s gate as a change from there.")


def hidden_map(n: Noun, view: str, color_by: str, method: str) -> str:
    """The caption under the hidden-states map: what a dot is, how it was placed (the method shown)
    and what its colour says (the colouring chosen), so the words follow every control."""
    dot = (f"Each dot is one test sample, placed by its own {n.one}'s branch's internal representation"
           if view == "own" else
           f"Each test sample appears once per branch: the same samples passed through every {n.one}'s branch")
    place = (", squeezed to two dimensions by UMAP, which keeps neighbours together: dots close together were seen "
             "as similar by the model (distances between islands mean little)." if method == "umap" else
             ", drawn along the two directions in which the representations differ most (PCA): a linear view that "
             "keeps distances and invents no clusters.")
    colour = {
        ("own", "scenario"): f"Colour: the sample's {n.one}. {n.Many} that overlap share patterns; separate islands "
                             f"are treated as different.",
        ("own", "branch"): f"Colour: the branch, which in this view is the sample's own {n.one}.",
        ("all", "scenario"): f"Colour: the sample's {n.one}, not the branch. Colours mixed within an island mean the "
                             f"branches, not the {n.many}, shape the map; colour by branch to compare the branches.",
        ("all", "branch"): "Colour: the branch. Separate islands per branch mean each branch has its own view; "
                           "overlapping colours mean the branches agree.",
    }.get((view, color_by)) or {
        "label": "Colour: whether the sample was clicked. Clicks gathered in one region mean the representation "
                 "separates what gets clicked.",
        "pred": "Colour: the model's predicted click probability for the sample.",
        "error": "Colour: how far the prediction was from what happened, |click − predicted probability| (0 = right "
                 "and sure, near 1 = sure and wrong). A region of high error is a kind of sample the model gets wrong.",
    }.get(color_by) or (f"Colour: the sample's {color_by.split(': ', 1)[-1]} (the most common values; the others "
                        "grey). Values gathered in one region mean the representation keeps them apart."
                        if color_by.startswith("field: ") else "")
    return f"{dot}{place} {colour}".strip()


def explorer(n: Noun) -> str:
    return (f"Select points with the box or lasso tool (top right of the map) to see what they are made of: their "
            f"{n.many}, click rate and most common field values against all points shown (lift 2 = twice as common "
            "in the selection). Click one point, or type its number, for its nearest neighbours in the hidden space "
            "itself: the map squeezes many dimensions into two, so points close on it need not be close to the "
            "model, and the other way round.")


def planted(n: Noun) -> str:
    return (f"This is simulated data, so we know which {n.many} were built to behave alike (the planted "
            f"similarity); the learned pairwise affinity is what the model found on its own. The recovery "
            f"score is the rank correlation between the two over all pairs of {n.many} (1 = same ordering, 0 = unrelated), with a permutation test; the null "
            f"scores say what a similarity that knows only traffic (or only the planted groups) would get.")


def data_similarity(n: Noun) -> str:
    return (f"A model-free view computed from the training data itself: how much the categories clicked in "
            f"one {n.one} overlap with another's (1 = identical click mix). If the model's α agrees with it, the "
            f"model picked up real similarity between {n.many}.")


RETRAIN = ("Train a new experiment with your own choice of models and settings. Training runs in the "
           "background — you can keep browsing; finished experiments appear in the sidebar picker. "
           "Only one job trains at a time; others wait in the queue.")

DEMO_MODE = "Read-only demo mode: retraining is switched off."


def relations(n: Noun, test: str) -> str:
    return (f"Each signal is a {n.one} x {n.one} matrix of how alike two {n.many} are, by one route: what SAML's "
            f"branches listen to (α) and how alike their hidden states are (CKA), how well one {n.one}'s part "
            f"scores another's rows (transfer), which inputs matter in each (importance profiles), other models' "
            f"own signals, the data itself and, on simulated data, the similarity planted in it. A cell: how alike "
            f"two signals rank the pairs of {n.many} (1 = the same order). ✓: significant in every run. {test}.")


def transfer(n: Noun, what: str, how: str, greyed: bool) -> str:
    cell = (f"Row s, column t: how much AUC {n.one} t's test rows lose when {n.one} s's part scores them instead "
            f"of t's own (negative: s's part does better); ✓ where the loss is significant in every run"
            if what == "loss" else
            f"Row s, column t: the AUC of {n.one} s's part on {n.one} t's test rows (the diagonal: each part on "
            f"its own rows)")
    grey = (f" Grey: {n.many} with too few clicks or non-clicks in their test rows to compare (hover for the "
            f"counts)." if greyed else "")
    return f"{cell}. {how}{grey} Hover a cell for its 95 % confidence interval."


def importance(n: Noun, m: dict, greyed: bool) -> str:
    runs = m["n_runs"]
    cost = m.get("cost_share") or {}
    share = (f" Computing it took {100 * cost['mean']:.0f} % of the training time." if cost.get("mean") is not None
             else "")
    return (f"Each cell: how much AUC the model loses in that {n.one} when one input is shuffled among that "
            f"{n.one}'s own test rows only ({m.get('n_repeats')} shuffles per run, at most {m.get('rows_cap')} "
            f"rows per {n.one}), mean over {runs} run{'s' * (runs != 1)}; red = the input matters there. "
            + ("✓: the drop is significant in every run. " if runs > 1 else
               "✓: the drop's 95 % interval lies above 0. ")
            + (f"Grey: no AUC in that {n.one} (too few clicks). " if greyed else "")
            + "Hover for the interval and the logloss." + share)
