"""The words on screen: what each page answers and what each chart means, for business viewers."""

APP_INTRO = """
**What this dashboard answers.** An online shop serves many *scenarios* — countries, or
city tiers — and wants to predict which ad or product each visitor will click. One model per
country wastes what countries have in common; one model for everybody blurs what makes each
country special. **SAML** trains one branch per scenario and lets each branch *listen* to
the branches most similar to it. This dashboard shows:

1. **Does it predict better?** Accuracy (AUC) of SAML against two baselines — one model for all
   scenarios (*BST*) and one separate model per scenario (*BST-Individual*) — overall and per country.
2. **Which scenarios behave alike?** How much each country's branch listens to every other
   (the *similarity coefficient α*) and how much it borrows at all (the *gate coefficient g*).
3. **What did the model learn inside?** A 2-D map of the branches' internal representations.
4. **Try it yourself:** retrain with other settings (unless this is a read-only demo).
"""

GLOSSARY = """
- **AUC** — chance that the model ranks a random clicked item above a random non-clicked one
  (0.5 = guessing, 1.0 = perfect). Small gains matter: +0.01 AUC is large in advertising.
- **Logloss** — how far predicted click probabilities are from what happened (lower is better).
- **RelaImpr** — improvement over BST relative to BST's distance from guessing:
  ((AUC − 0.5) / (AUC of BST − 0.5) − 1) × 100 %.
- **α (similarity coefficient)** — for a sample of scenario s, how much weight s's branch gives to
  each other branch; the weights over the other branches add up to 1.
- **g (gate coefficient)** — how much of that borrowed knowledge a branch actually adds (0 = none).
"""

OVERALL_TABLE = ("Each row is one model trained on the same data and tested on the same held-out day. "
                 "Higher AUC and lower logloss are better; RelaImpr shows the gain over BST in percent.")

TRAINING_CURVES = ("How the validation accuracy evolved while each model trained. Training stops early "
                   "once validation AUC stops improving; the model from the best epoch is the one tested.")

PER_SCENARIO_BARS = ("For every country (scenario), how well each model ranks clicks. Bars that reach higher "
                     "are better. The thin whiskers show the uncertainty: when two models' whiskers overlap a "
                     "lot, the difference may be luck. A ★ marks countries where a paired statistical test says "
                     "SAML beats BST (p < 0.05).")

ORACLE = " The black dash is the best accuracy any model could reach on this simulated data (the oracle)."

RELAIMPR = ("Gain of each model over BST in each country, in percent of BST's distance from guessing. "
            "Above zero: better than BST.")

TRAFFIC = ("How much of the training data each country contributes. Small countries have little data of "
           "their own: they are the ones expected to profit from learning with similar countries.")

HEATMAP = ("Read a row: for samples from that country, how much its branch listens to each other country "
           "(α, brighter = more). Rows add up to 1. Countries are ordered so that those with similar "
           "listening patterns sit next to each other; blocks of bright cells are groups of related markets.")

CDF = ("Each curve is one other country. A curve further to the right means the chosen country listens "
       "to that country more strongly for most of its samples (the paper's Figure 3).")

GATES = ("The gate g decides how much a branch adds of what it hears from the other branches. The paper "
         "expects large countries, which have plenty of their own data, to keep g low, and small countries "
         "to raise it.")

GATE_TRAFFIC = ("Each dot is a country: its share of the traffic against its average gate. A downward trend "
                "means small countries lean more on the others, as the paper found.")

PLANTED = ("This is simulated data, so we know which countries were built to behave alike (left). Right: "
           "what the model learned on its own (α, symmetrised). The recovery score is the rank correlation "
           "between the two (1 = same ordering of country pairs, 0 = unrelated).")

DATA_SIMILARITY = ("A model-free view computed from the training data itself: how much the categories "
                   "clicked in one country overlap with another's (1 = identical click mix). If the model's "
                   "α agrees with it, the model picked up real market similarity.")

UMAP_OWN = ("Each dot is one test sample, placed by its country branch's internal representation and squeezed "
            "to two dimensions with UMAP. Dots close together were seen as similar by the model. Countries that "
            "overlap share patterns; separate islands are treated as different markets.")

UMAP_ALL = ("The same samples passed through every country's branch, coloured by branch. If branches form "
            "separate islands, each country has learned its own view; where they overlap, they agree.")

RETRAIN = ("Train a new experiment with your own choice of models and settings. Training runs in the "
           "background — you can keep browsing; finished experiments appear in the sidebar picker. "
           "Only one job trains at a time; others wait in the queue.")

DEMO_MODE = "Read-only demo mode: retraining is switched off."

DATASET_BADGES = {
    "synthetic": ("**Simulated data.** A built-in simulator of a cross-border shop with 10 countries. "
                  "Which countries behave alike was planted on purpose, so we can check what the model recovers."),
    "taobao": ("**Real data: Taobao ad clicks (sample).** Public Alimama data; scenario = city tier. "
               "It is small, so accuracy estimates are noisy (wide error bars are the honest result)."),
    "byo": "**Your own log.** Loaded from a file you provided.",
}
