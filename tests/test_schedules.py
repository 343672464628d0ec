"""Tests of `lrjax.schedules` against independent references.

References: the documents' formulas evaluated in plain Python (`math`, float64),
optax's own schedules where one exists, and PyTorch scheduler values pasted below as
constants (the tests do not import torch).  Comparisons are at 1e-6 relative (`RTOL`)
in float32, including against PyTorch's float64 iterative/recursive forms (StepLR,
ExponentialLR, CosineAnnealingLR, CosineAnnealingWarmRestarts.step()): the schedules
use cancellation-free interpolation weights and split exponents (`_numerics`).  Looser
only where the *reference* is float32 and loses digits itself: optax's cosine schedules
(`1 + cos` near the minimum, atol 1e-7 * max_lr), and optax's polynomial schedule near
its end value (atol 4e-7 * r0).
"""

import importlib.util
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schedule_checks import RTOL, assert_matches, check_jit_vector_and_vmap, f32, values

from lrjax import schedules as S

ROOT = pathlib.Path(__file__).resolve().parents[1]
SETTINGS = settings(max_examples=30, deadline=None)


def optax_values(optax_schedule, num_steps):
  """An optax schedule at steps 0..num_steps-1 (vmapped: some take scalar counts only)."""
  return np.asarray(jax.jit(jax.vmap(optax_schedule))(jnp.arange(num_steps)), np.float64)


# -----------------------------------------------------------------------------------
# PyTorch reference values.  Each list is `scheduler.get_last_lr()[0]` after k calls of
# `optimizer.step(); scheduler.step()`, k = 0, 1, ..., with `p = nn.Parameter(zeros(1))`
# and `SGD`, `lr_scheduler.*` from torch.optim (float64 Python floats, printed by repr).
# -----------------------------------------------------------------------------------

# torch 2.13.0: StepLR(SGD([p], lr=0.1), step_size=10, gamma=0.5)
STEPLR = [
    0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05,
    0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025, 0.025, 0.025, 0.025, 0.025, 0.025,
    0.025, 0.0125, 0.0125, 0.0125, 0.0125, 0.0125, 0.0125, 0.0125, 0.0125, 0.0125, 0.0125,
]

# torch 2.13.0: ExponentialLR(SGD([p], lr=1.0), gamma=math.exp(-0.05))
EXPONENTIALLR = [
    1.0, 0.951229424500714, 0.9048374180359596, 0.8607079764250579, 0.8187307530779819,
    0.778800783071405, 0.740818220681718, 0.7046880897187136, 0.6703200460356394,
    0.6376281516217734, 0.6065306597126335, 0.5769498103804868, 0.5488116360940265,
    0.5220457767610162, 0.49658530379140964, 0.4723665527410148, 0.4493289641172217,
    0.42741493194872676, 0.4065696597405992, 0.3867410234545013, 0.3678794411714424,
    0.34993774911115544, 0.33287108369807966, 0.31663676937905333, 0.3011942119122022,
    0.2865047968601902, 0.2725317930340127, 0.2592402606458916, 0.24659696394160657,
    0.23457028809379774, 0.2231301601484299, 0.21224797382674312, 0.20189651799465547,
    0.19204990862075416, 0.1826835240527347, 0.17377394345044517, 0.1652988882215866,
    0.15723716631362766, 0.1495686192226351, 0.14227407158651362, 0.13533528323661273,
    0.12873490358780426, 0.12245642825298195, 0.116484157773497, 0.11080315836233391,
    0.10539922456186436, 0.10025884372280376, 0.09536916221554964, 0.09071795328941253,
    0.08629358649937054,
]

# torch 2.13.0: CosineAnnealingLR(SGD([p], lr=0.1), T_max=50, eta_min=0.001)
# (PyTorch's recursive form; it agrees with the closed form to ~1e-15.)
COSINEANNEALINGLR = [
    0.1, 0.09990232305719944, 0.09960967771506665, 0.09912321891107008,
    0.09844486647586721, 0.09757729755661008, 0.09652393605146842, 0.09528893909706795,
    0.09387718066217123, 0.09229423231234973, 0.09054634122155988, 0.08864040551740156,
    0.08658394705735986, 0.08438508174347008, 0.08205248749256012, 0.07959536998847742,
    0.07702342635146033, 0.07434680686803491, 0.0715760749324711, 0.06872216535789157,
    0.06579634122155989, 0.0628101494146603, 0.059775375071993375, 0.056703995061433074,
    0.05360813071670102, 0.0505, 0.04739186928329899, 0.044296004938566946,
    0.04122462492800664, 0.03818985058533969, 0.035203658778440124, 0.03227783464210846,
    0.02942392506752891, 0.02665319313196509, 0.023976573648539657, 0.021404630011522586,
    0.018947512507439857, 0.016614918256529908, 0.014416052942640138, 0.012359594482598435,
    0.010453658778440102, 0.00870576768765026, 0.007122819337828748, 0.005711060902932039,
    0.004476063948531556, 0.0034227024433898987, 0.002555133524132766,
    0.0018767810889299076, 0.0013903222849333504, 0.0010976769428005578, 0.001,
]

# torch 2.13.0: CosineAnnealingWarmRestarts(SGD([p], lr=0.1), T_0=5, T_mult=2,
#                                                eta_min=0.001)
WARM_RESTARTS_T0_5_TMULT_2 = [
    0.1, 0.0905463412215599, 0.0657963412215599, 0.03520365877844011, 0.010453658778440109,
    0.1, 0.09757729755661011, 0.0905463412215599, 0.07959536998847742, 0.0657963412215599,
    0.0505, 0.03520365877844011, 0.021404630011522586, 0.010453658778440109,
    0.0034227024433899004, 0.1, 0.09939057285945932, 0.09757729755661011,
    0.09460482294732421, 0.0905463412215599, 0.0855017856687341, 0.07959536998847742,
    0.07297252973710756, 0.0657963412215599, 0.05824350601949144, 0.0505,
    0.04275649398050859, 0.03520365877844011, 0.02802747026289244, 0.021404630011522586,
    0.0154982143312659, 0.010453658778440109, 0.0063951770526757944, 0.0034227024433899004,
    0.001609427140540686, 0.1, 0.09984740801978985, 0.09939057285945932, 0.098632311059685,
    0.09757729755661011, 0.0962320368593087, 0.09460482294732421, 0.09270568813552757,
    0.0905463412215599, 0.08814009529720154, 0.0855017856687341, 0.0826476783923441,
    0.07959536998847742, 0.07636367895343947, 0.07297252973710756,
]

# torch 2.13.0: CosineAnnealingWarmRestarts(SGD([p], lr=0.1), T_0=7, T_mult=1,
#                                                eta_min=0.001)
WARM_RESTARTS_T0_7_TMULT_1 = [
    0.1, 0.09509795896116975, 0.08136274519200731, 0.061514786230837566,
    0.03948521376916244, 0.019637254807992693, 0.005902041038830258, 0.1,
    0.09509795896116975, 0.08136274519200731, 0.061514786230837566, 0.03948521376916244,
    0.019637254807992693, 0.005902041038830258, 0.1, 0.09509795896116975,
    0.08136274519200731, 0.061514786230837566, 0.03948521376916244, 0.019637254807992693,
    0.005902041038830258, 0.1, 0.09509795896116975, 0.08136274519200731,
    0.061514786230837566, 0.03948521376916244, 0.019637254807992693, 0.005902041038830258,
    0.1, 0.09509795896116975,
]

# torch 2.13.0: CyclicLR(SGD([p], lr=0.001), base_lr=0.001, max_lr=0.006, step_size_up=5,
#                         mode='triangular', cycle_momentum=False)
CYCLIC_TRIANGULAR = [
    0.001, 0.002000000000000001, 0.0029999999999999996, 0.004, 0.004999999999999999, 0.006,
    0.004999999999999999, 0.004, 0.0029999999999999996, 0.002000000000000001, 0.001,
    0.002000000000000001, 0.003000000000000002, 0.003999999999999998, 0.004999999999999999,
    0.006, 0.004999999999999999, 0.003999999999999998, 0.003000000000000002,
    0.002000000000000001, 0.001, 0.002000000000000001, 0.003000000000000002,
    0.003999999999999998, 0.004999999999999999, 0.006, 0.004999999999999999,
    0.003999999999999998, 0.003000000000000002, 0.002000000000000001, 0.001,
    0.0019999999999999966, 0.003000000000000002, 0.003999999999999998,
    0.005000000000000004, 0.006, 0.005000000000000004, 0.003999999999999998,
    0.003000000000000002, 0.0019999999999999966,
]

# torch 2.13.0: CyclicLR(SGD([p], lr=0.001), base_lr=0.001, max_lr=0.006, step_size_up=5,
#                         mode='triangular2', cycle_momentum=False)
CYCLIC_TRIANGULAR2 = [
    0.001, 0.002000000000000001, 0.0029999999999999996, 0.004, 0.004999999999999999, 0.006,
    0.004999999999999999, 0.004, 0.0029999999999999996, 0.002000000000000001, 0.001,
    0.0015000000000000005, 0.002000000000000001, 0.002499999999999999,
    0.0029999999999999996, 0.0035, 0.0029999999999999996, 0.002499999999999999,
    0.002000000000000001, 0.0015000000000000005, 0.001, 0.0012500000000000002,
    0.0015000000000000005, 0.0017499999999999996, 0.002, 0.0022500000000000003, 0.002,
    0.0017499999999999996, 0.0015000000000000005, 0.0012500000000000002, 0.001,
    0.0011249999999999997, 0.0012500000000000002, 0.001375, 0.0015000000000000005,
    0.0016250000000000001, 0.0015000000000000005, 0.001375, 0.0012500000000000002,
    0.0011249999999999997,
]

# torch 2.13.0: CyclicLR(SGD([p], lr=0.001), base_lr=0.001, max_lr=0.006, step_size_up=5,
#                         mode='exp_range', gamma=0.95, cycle_momentum=False)
CYCLIC_EXP_RANGE = [
    0.001, 0.0019500000000000008, 0.0028049999999999993, 0.003572125, 0.004258024999999999,
    0.004868904687499999, 0.003940367562499998, 0.0030950118882812497,
    0.0023268408625781245, 0.0016302494097246096, 0.001, 0.0015688000922764603,
    0.0020807201753252746, 0.0025400262498385135, 0.0029506999164621178,
    0.003316456150798765, 0.0027605066746070614, 0.0022543610056575307,
    0.0017944286369164372, 0.0013773536025353077, 0.001, 0.0013405616262881152,
    0.0016470670899474188, 0.0019220706031750703, 0.0021679560973550892,
    0.002386947865609169, 0.002054080377862968, 0.0017510322692273644,
    0.0014756537705106648, 0.0012259355409925657, 0.001, 0.0012039068257457897,
    0.001387422968917002, 0.0015520777307067271, 0.0016992984588951887,
    0.001830416919938036, 0.0016311168591529078, 0.0014496707621464461,
    0.0012847914826927497, 0.0011352759542790556,
]

# torch 2.13.0: CyclicLR(SGD([p], lr=0.001), base_lr=0.001, max_lr=0.006, step_size_up=4,
#                         step_size_down=2, mode='triangular', cycle_momentum=False)
CYCLIC_TRIANGULAR_UP4_DOWN2 = [
    0.001, 0.0022500000000000007, 0.0034999999999999996, 0.00475, 0.005999999999999999,
    0.0034999999999999975, 0.001, 0.002250000000000002, 0.003499999999999998, 0.00475,
    0.005999999999999995, 0.003500000000000004, 0.001, 0.002249999999999999,
    0.0035000000000000014, 0.00475, 0.005999999999999999, 0.0034999999999999975, 0.001,
    0.002249999999999996, 0.0035000000000000044, 0.00475, 0.005999999999999996,
    0.003499999999999991, 0.001, 0.002250000000000002, 0.003499999999999998, 0.00475,
    0.005999999999999995, 0.003500000000000004,
]

# torch 2.13.0: OneCycleLR(SGD([p], lr=0.1), max_lr=0.1, total_steps=50)  (cos, pct_start=0.3)
ONECYCLE_COS = [
    0.0040000000000000036, 0.0052034602152724735, 0.008753494340683884,
    0.014472088841534572, 0.022072489510780793, 0.03117358052235722, 0.04131899517009691,
    0.052000000000000005, 0.0626810048299031, 0.07282641947764279, 0.08192751048921922,
    0.08952791115846544, 0.09524650565931612, 0.09879653978472754, 0.1,
    0.09979871550490317, 0.09919648264401378, 0.09819815024222053, 0.09681175628501273,
    0.09504846320134738, 0.09292246799033459, 0.0904508879153485, 0.08765362268588736,
    0.08455319423681344, 0.0811745653949763, 0.07754493889320883, 0.07369353834991745,
    0.06965137297768985, 0.0654509879153485, 0.06112620219362893, 0.05671183644422961,
    0.05224343254455968, 0.04775696745544034, 0.043288563555770404, 0.03887419780637107,
    0.03454941208465151, 0.030349027022310158, 0.026306861650082565, 0.022455461106791173,
    0.0188258346050237, 0.015447205763186566, 0.012346777314112658, 0.009549512084651508,
    0.007077932009665416, 0.004951936798652629, 0.003188643714987268,
    0.0018022497577794773, 0.0008039173559862364, 0.00020168449509684564, 4e-07,
]

# torch 2.13.0: OneCycleLR(SGD([p], lr=0.1), max_lr=0.1, total_steps=50,
#                           anneal_strategy='linear', cycle_momentum=False)
ONECYCLE_LINEAR = [
    0.004, 0.010857142857142857, 0.017714285714285714, 0.02457142857142857,
    0.03142857142857143, 0.038285714285714284, 0.04514285714285714, 0.052000000000000005,
    0.05885714285714286, 0.06571428571428573, 0.07257142857142858, 0.07942857142857143,
    0.08628571428571429, 0.09314285714285715, 0.1, 0.09714286857142858,
    0.09428573714285715, 0.09142860571428572, 0.0885714742857143, 0.08571434285714286,
    0.08285721142857143, 0.08000008, 0.07714294857142857, 0.07428581714285715,
    0.07142868571428572, 0.06857155428571429, 0.06571442285714285, 0.06285729142857144,
    0.06000016, 0.05714302857142858, 0.05428589714285715, 0.051428765714285715,
    0.048571634285714295, 0.04571450285714286, 0.042857371428571434, 0.040000240000000006,
    0.03714310857142858, 0.03428597714285714, 0.03142884571428571, 0.028571714285714284,
    0.025714582857142856, 0.02285745142857143, 0.020000319999999988, 0.01714318857142856,
    0.014286057142857148, 0.01142892571428572, 0.008571794285714293, 0.005714662857142852,
    0.002857531428571425, 3.999999999976245e-07,
]

# torch 2.13.0: OneCycleLR(SGD([p], lr=0.1), max_lr=0.1, total_steps=50, pct_start=0.25,
#   anneal_strategy='linear', div_factor=10.0, final_div_factor=100.0, three_phase=True,
#   cycle_momentum=False)
ONECYCLE_THREE_PHASE = [
    0.01, 0.01782608695652174, 0.02565217391304348, 0.03347826086956522,
    0.04130434782608696, 0.0491304347826087, 0.05695652173913044, 0.06478260869565218,
    0.07260869565217391, 0.08043478260869566, 0.08826086956521739, 0.09608695652173914,
    0.09608695652173914, 0.08826086956521739, 0.08043478260869566, 0.07260869565217391,
    0.06478260869565217, 0.056956521739130433, 0.0491304347826087, 0.041304347826086954,
    0.03347826086956522, 0.025652173913043474, 0.01782608695652174, 0.009999999999999995,
    0.009619230769230769, 0.00923846153846154, 0.008857692307692308, 0.008476923076923076,
    0.008096153846153847, 0.007715384615384615, 0.007334615384615385, 0.006953846153846154,
    0.006573076923076923, 0.006192307692307691, 0.005811538461538462, 0.00543076923076923,
    0.00505, 0.004669230769230769, 0.004288461538461539, 0.003907692307692307,
    0.003526923076923077, 0.0031461538461538463, 0.0027653846153846157,
    0.0023846153846153835, 0.002003846153846153, 0.0016230769230769233,
    0.0012423076923076919, 0.0008615384615384605, 0.0004807692307692308,
    9.99999999999994e-05,
]

# torch 2.13.0: OneCycleLR(SGD([p], lr=0.5), max_lr=0.5, total_steps=37, pct_start=0.33,
#                           div_factor=5.0, final_div_factor=50.0, cycle_momentum=False)
ONECYCLE_COS_PCT_ODD = [
    0.09999999999999998, 0.10780268753667166, 0.1306019308187374, 0.16661877613217202,
    0.2130429415766018, 0.26625209458089033, 0.3220944911952035, 0.37621292369873754,
    0.4243846999034971, 0.4628511266313599, 0.4886107887982283, 0.4996537404547191,
    0.4987531694109664, 0.4936209063274089, 0.4845973532038091, 0.47182723484120415,
    0.4555153655531945, 0.4359233642392218, 0.4133654583940702, 0.38820344435123877,
    0.36084088459062413, 0.3317166351773457, 0.30129780714227494, 0.27007227469359296,
    0.2385408504168754, 0.20720925296223228, 0.17657999604523475, 0.14714432885037876,
    0.1193743571014094, 0.09371547116519453, 0.0705792026314621, 0.05033662393857647,
    0.0333123969058538, 0.019779565625390808, 0.009955177227924696, 0.003996800759335535,
    0.002,
]


# -----------------------------------------------------------------------------------
# Decays
# -----------------------------------------------------------------------------------


def test_step_decay_matches_torch_optax_and_formula():
  sched = S.step_decay(0.1, drop=0.5, step_size=10)
  assert_matches(sched, STEPLR)
  assert_matches(sched, optax_values(optax.exponential_decay(0.1, 10, 0.5, staircase=True), 100))
  # survey eq 2.2 with floor, Keras article: lr0 * drop^floor(epoch / epochs_drop)
  assert_matches(sched, [0.1 * 0.5 ** math.floor(t / 10) for t in range(100)])
  # non-integer step sizes as Keras allows (epochs_drop = 2.5)
  assert_matches(S.step_decay(1.0, 0.7, 2.5), [0.7 ** math.floor(t / 2.5) for t in range(40)])


def test_keras_step_decay_matches_the_documents_code():
  # Keras article's `step_decay(epoch)` (initial 0.1, drop 0.5, epochs_drop 10.0)
  def keras_article(epoch):
    return 0.1 * math.pow(0.5, math.floor((1 + epoch) / 10.0))
  assert_matches(S.keras_step_decay(0.1, 0.5, 10.0), [keras_article(e) for e in range(100)])
  # survey's toy example: initial_lr * decay_factor ** floor((1 + epoch) / step_size)
  assert_matches(S.keras_step_decay(1.0, 0.5, 10),
                 [1.0 * 0.5 ** np.floor((1 + e) / 10) for e in range(100)])


def test_exponential_decay_matches_torch_optax_and_formula():
  sched = S.exponential_decay(1.0, 0.05)
  assert_matches(sched, EXPONENTIALLR)
  # optax: decay_rate ** (t / transition_steps), i.e. exp(-1) ** (t / 20); (the form
  # exp(-0.05) ** t would compound the float32 rounding of exp(-0.05) t times)
  assert_matches(sched, optax_values(optax.exponential_decay(1.0, 20, math.exp(-1.0)), 100))
  # survey's toy example (eq 2.6): initial_lr * exp(-decay_rate * epoch)
  assert_matches(sched, [1.0 * math.exp(-0.05 * t) for t in range(100)])
  assert_matches(S.exponential_decay(2.0, 0.1), [2.0 * math.exp(-0.1 * t) for t in range(100)])


def test_inverse_time_decay_matches_formula():
  for r0, k in [(0.1, 0.01), (1.0, 0.5), (0.3, 0.0)]:
    assert_matches(S.inverse_time_decay(r0, k), [r0 / (1 + k * t) for t in range(200)])


def test_keras_time_based_decay_matches_legacy_keras_loop():
  # Legacy Keras SGD.get_updates: lr_t = lr * (1 / (1 + decay * iterations)), then
  # iterations += 1; `lr` itself never changes (no compounding), once per batch.
  lr, decay = 0.1, 0.1 / 50  # the article's decay_rate = learning_rate / epochs
  expected, iterations = [], 0
  for _ in range(500):
    expected.append(lr * (1.0 / (1.0 + decay * iterations)))
    iterations += 1  # noqa: SIM113 (Keras's own counter, as the article writes it)
  sched = S.keras_time_based_decay(lr, decay)
  assert_matches(sched, expected)
  # ... which is the inverse-time formula in the update count
  np.testing.assert_allclose(values(sched, 500), values(S.inverse_time_decay(lr, decay), 500),
                             rtol=RTOL)


def test_polynomial_decay_matches_optax_and_formula():
  for r0, total, power, end in [(0.1, 100, 1.0, 0.0), (0.1, 100, 2.0, 0.0),
                                (0.5, 37, 0.5, 0.01), (1.0, 10, 3.0, 0.2)]:
    sched = S.polynomial_decay(r0, total, power=power, end_value=end)
    ref = optax.polynomial_schedule(r0, end, power, total)
    # optax evaluated eagerly: under jit XLA turns its `1 - t / T` into `1 - t * (1/T)`,
    # slightly negative at t = T, and a fractional power then gives NaN.
    want = np.asarray(jax.vmap(ref)(jnp.arange(total + 20)), np.float64)
    got = values(sched, total + 20)
    # optax computes (r0 - end) * (1 - t/T)**p + end; the last steps before T (where
    # the rate approaches `end`) are compared in absolute terms to its float32 ulp.
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=4e-7 * r0)
    # survey eq 2.5 (end = 0 there), clamped at T, in float64
    exact = [(r0 - end) * (1 - min(t, total) / total) ** power + end for t in range(total + 20)]
    np.testing.assert_allclose(got[got > 0], np.asarray(exact)[got > 0], rtol=RTOL)
    assert got[total] == pytest.approx(end, abs=1e-12)


# -----------------------------------------------------------------------------------
# Cosine
# -----------------------------------------------------------------------------------


def test_cosine_annealing_matches_torch_optax_and_survey():
  sched = S.cosine_annealing(0.1, 50, min_lr=0.001)
  assert_matches(sched, COSINEANNEALINGLR)
  # survey eq 2.7 toy example (lr_min 0.001, lr_max 0.1, max_epochs 100)
  assert_matches(S.cosine_annealing(0.1, 100, 0.001),
                 [0.001 + 0.5 * (0.1 - 0.001) * (1 + np.cos(e / 100 * np.pi))
                  for e in range(101)])
  # optax evaluates 0.5 * (1 + cos(pi t / T)) in float32, which loses digits where the
  # rate approaches min_lr: its own absolute error is ~ulp(cos) * (max - min) / 2, so
  # it is compared with atol = 1e-7 * max_lr (PyTorch and the formula at rtol 1e-6).
  ref = optax.cosine_decay_schedule(0.1, 50, alpha=0.001 / 0.1)
  np.testing.assert_allclose(values(sched, 70), optax_values(ref, 70),
                             rtol=RTOL, atol=1e-7 * 0.1)
  assert np.all(values(sched, 80)[50:] == np.float32(0.001))  # clamped after T


def test_cosine_warm_restarts_matches_torch_and_optax_sgdr():
  assert_matches(S.cosine_warm_restarts(0.1, 5, cycle_mult=2, min_lr=0.001),
                 WARM_RESTARTS_T0_5_TMULT_2)
  assert_matches(S.cosine_warm_restarts(0.1, 7, cycle_mult=1, min_lr=0.001),
                 WARM_RESTARTS_T0_7_TMULT_1)
  for t0, mult in [(5, 2), (3, 3), (7, 1), (1, 2)]:
    lengths = [t0 * mult ** i for i in range(12)]
    ref = optax.sgdr_schedule([dict(init_value=0.1, peak_value=0.1, warmup_steps=0,
                                    decay_steps=n, end_value=0.001) for n in lengths])
    num = min(sum(lengths), 2000)
    got = values(S.cosine_warm_restarts(0.1, t0, cycle_mult=mult, min_lr=0.001), num)
    # optax's float32 1 + cos(...) form: atol as in the cosine-annealing test
    np.testing.assert_allclose(got, optax_values(ref, num), rtol=RTOL,
                               atol=1e-7 * 0.1)
    np.testing.assert_allclose(got, _torch_warm_restarts(num, t0, mult, 0.001, 0.1), rtol=RTOL)


def _torch_warm_restarts(num, t0, mult, lo, hi):
  """PyTorch's CosineAnnealingWarmRestarts.step() (no epoch argument), in float64.

  (Its `step(epoch)` closed form takes int(log(...)) and misplaces some restarts,
  e.g. T_0=3, T_mult=3 at epoch 363 where log_3(243) evaluates to 4.999...)
  """
  out, t_cur, t_i = [], 0, t0
  for _ in range(num):
    out.append(lo + (hi - lo) * (1 + math.cos(math.pi * t_cur / t_i)) / 2)
    t_cur += 1
    if t_cur >= t_i:
      t_cur, t_i = t_cur % t_i, t_i * mult
  return out


def test_cosine_warm_restarts_long_run_restart_boundaries():
  for t0, mult in [(10, 2), (4, 3), (1, 2)]:
    sched = S.cosine_warm_restarts(0.5, t0, cycle_mult=mult, min_lr=0.01)
    got = np.asarray(jax.jit(sched)(jnp.arange(0, 20000, 7)))
    want = _torch_warm_restarts(20000, t0, mult, 0.01, 0.5)[::7]
    np.testing.assert_allclose(got, want, rtol=RTOL)
    restarts = [t0 * (mult ** i - 1) // (mult - 1) for i in range(1, 8)]
    assert np.all(np.asarray(jax.jit(sched)(jnp.asarray(restarts))) == np.float32(0.5))


# -----------------------------------------------------------------------------------
# Cyclical
# -----------------------------------------------------------------------------------


def test_cyclical_matches_torch_cycliclr():
  assert_matches(S.triangular(0.001, 0.006, 5), CYCLIC_TRIANGULAR)
  assert_matches(S.triangular2(0.001, 0.006, 5), CYCLIC_TRIANGULAR2)
  assert_matches(S.exp_range(0.001, 0.006, 5, gamma=0.95), CYCLIC_EXP_RANGE)
  assert_matches(S.triangular(0.001, 0.006, 4, step_size_down=2), CYCLIC_TRIANGULAR_UP4_DOWN2)
  assert_matches(S.cyclical(0.001, 0.006, 5, mode="exp_range", gamma=0.95), CYCLIC_EXP_RANGE)


def _torch_cyclic(t, lo, hi, up, down, mode, gamma):
  # PyTorch CyclicLR.get_lr in float64, written out
  total = up + down
  cycle = math.floor(1 + t / total)
  x = 1.0 + t / total - cycle
  ratio = up / total
  scale = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
  amp = {"triangular": 1.0, "triangular2": 1 / (2.0 ** (cycle - 1)),
         "exp_range": gamma ** t}[mode]
  return lo + (hi - lo) * scale * amp


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclical_matches_torch_formula_many_cycles(mode):
  for up, down in [(2000, 2000), (7, 3), (2.5, 2.5)]:
    sched = S.cyclical(1e-4, 0.1, up, step_size_down=down, mode=mode, gamma=0.9999)
    num = 3000 if up < 100 else 20000
    steps = np.arange(0, num, 3)
    got = np.asarray(jax.jit(sched)(jnp.asarray(steps)))
    want = [_torch_cyclic(int(t), 1e-4, 0.1, up, down, mode, 0.9999) for t in steps]
    np.testing.assert_allclose(got, want, rtol=RTOL)


def test_welch_and_hann_windows_match_survey_shapes():
  lo, hi, step = 0.001, 0.006, 10
  def phase(t):
    return (t % (2 * step)) / (2 * step)
  welch_ref = [lo + (hi - lo) * (1 - (2 * phase(t) - 1) ** 2) for t in range(100)]
  hann_ref = [lo + (hi - lo) * math.sin(math.pi * phase(t)) ** 2 for t in range(100)]
  assert_matches(S.welch(lo, hi, step), welch_ref)
  assert_matches(S.hann(lo, hi, step), hann_ref)
  assert_matches(S.cyclical(lo, hi, step, window="hann"), hann_ref)
  # the windows combine with Smith's amplitude policies
  tri2_welch = [lo + (hi - lo) * (1 - (2 * phase(t) - 1) ** 2) / 2 ** (t // (2 * step))
                for t in range(100)]
  assert_matches(S.cyclical(lo, hi, step, mode="triangular2", window="welch"), tri2_welch)


# -----------------------------------------------------------------------------------
# One cycle and the range test
# -----------------------------------------------------------------------------------


def test_one_cycle_matches_document_and_optax():
  # The document's CIFAR-10 run: 0.08 -> 0.8 in 41 epochs, back in 41, then 13 epochs
  # down to 1/10 of the lower bound.
  def document(t, lo=0.08, hi=0.8, s=41, total=95, final=0.008):
    if t <= s:
      return lo + (hi - lo) * t / s
    if t <= 2 * s:
      return hi - (hi - lo) * (t - s) / s
    return lo + (final - lo) * min(t - 2 * s, total - 2 * s) / (total - 2 * s)
  sched = S.one_cycle(0.08, 0.8, 41, 95, annihilation_factor=10.0)
  assert_matches(sched, [document(t) for t in range(120)])
  ref = optax.linear_onecycle_schedule(95, 0.8, pct_start=41 / 95, pct_final=82 / 95,
                                       div_factor=0.8 / 0.08, final_div_factor=10.0)
  assert_matches(sched, optax_values(ref, 120))
  lrs = values(S.one_cycle(0.01, 0.1, 40, 100, annihilation_factor=100.0), 101)
  assert lrs[0] == pytest.approx(0.01) and lrs[40] == pytest.approx(0.1)
  assert lrs[80] == pytest.approx(0.01) and lrs[100] == pytest.approx(1e-4)


# torch 2.13.0+cpu: OneCycleLR(SGD([p], lr=0.1), max_lr=0.1, total_steps=95, pct_start=0.3,
#   anneal_strategy='linear', three_phase=True)
ONECYCLE_THREE_PHASE_95_LINEAR = [
    0.004, 0.0074909090909090915, 0.010981818181818183, 0.014472727272727273,
    0.017963636363636362, 0.021454545454545455, 0.024945454545454545, 0.028436363636363635,
    0.03192727272727273, 0.03541818181818182, 0.03890909090909091, 0.04240000000000001,
    0.04589090909090909, 0.04938181818181818, 0.052872727272727266, 0.056363636363636366,
    0.05985454545454545, 0.06334545454545455, 0.06683636363636364, 0.07032727272727274,
    0.07381818181818182, 0.07730909090909091, 0.08080000000000001, 0.0842909090909091,
    0.08778181818181818, 0.09127272727272727, 0.09476363636363637, 0.09825454545454546,
    0.09825454545454546, 0.09476363636363637, 0.09127272727272728, 0.08778181818181818,
    0.0842909090909091, 0.08080000000000001, 0.07730909090909091, 0.07381818181818182,
    0.07032727272727274, 0.06683636363636364, 0.06334545454545455, 0.05985454545454546,
    0.05636363636363637, 0.05287272727272728, 0.04938181818181819, 0.0458909090909091,
    0.04240000000000001, 0.038909090909090914, 0.03541818181818182, 0.031927272727272735,
    0.028436363636363635, 0.02494545454545455, 0.02145454545454545, 0.017963636363636376,
    0.014472727272727276, 0.01098181818181819, 0.00749090909090909, 0.0040000000000000036,
    0.003897446153846154, 0.0037948923076923076, 0.003692338461538462,
    0.0035897846153846156, 0.0034872307692307694, 0.003384676923076923,
    0.003282123076923077, 0.003179569230769231, 0.0030770153846153845,
    0.0029744615384615387, 0.0028719076923076924, 0.002769353846153846,
    0.0026668000000000004, 0.0025642461538461538, 0.002461692307692308,
    0.0023591384615384617, 0.0022565846153846155, 0.0021540307692307693,
    0.002051476923076923, 0.0019489230769230773, 0.001846369230769231,
    0.0017438153846153848, 0.0016412615384615386, 0.0015387076923076923,
    0.0014361538461538461, 0.0013336000000000003, 0.001231046153846154,
    0.0011284923076923079, 0.0010259384615384616, 0.0009233846153846154,
    0.0008208307692307696, 0.0007182769230769234, 0.0006157230769230772,
    0.0005131692307692309, 0.0004106153846153847, 0.0003080615384615385,
    0.00020550769230769268, 0.00010295384615384645, 4.0000000000022656e-07,
]
# torch 2.13.0+cpu: OneCycleLR(SGD([p], lr=0.1), max_lr=0.1, total_steps=95, pct_start=0.3,
#   anneal_strategy='cos', three_phase=True)
ONECYCLE_THREE_PHASE_95_COS = [
    0.0040000000000000036, 0.0043128767032696025, 0.005247427986767986,
    0.006791470545302811, 0.00892487542281481, 0.011619830424103306, 0.01484120268932404,
    0.018546996704545904, 0.022688901777498965, 0.027212921841329826, 0.03206007937590945,
    0.037167184270002526, 0.042467657601004224, 0.047892399593015694, 0.05337069043809742,
    0.058831112237117685, 0.06420248004128737, 0.06941476985683076, 0.07440003151483235,
    0.07909327450560491, 0.08343331522937368, 0.08736357461806744, 0.09083281572999748,
    0.0937958117017493, 0.09621393534951281, 0.09805566273349588, 0.09929698412068927,
    0.09992171698845452, 0.0999217169884545, 0.09929698412068927, 0.09805566273349589,
    0.09621393534951281, 0.09379581170174932, 0.09083281572999748, 0.08736357461806744,
    0.0834333152293737, 0.07909327450560494, 0.07440003151483235, 0.06941476985683077,
    0.06420248004128738, 0.05883111223711769, 0.05337069043809742, 0.04789239959301571,
    0.042467657601004224, 0.037167184270002526, 0.03206007937590946, 0.027212921841329833,
    0.022688901777498965, 0.01854699670454592, 0.01484120268932404, 0.011619830424103297,
    0.008924875422814806, 0.0067914705453028185, 0.0052474279867679935,
    0.0043128767032695895, 0.004, 0.003993515264806793, 0.003974103115223298,
    0.003941889446488619, 0.003897083176605901, 0.0038399748914289163,
    0.0037709349601012885, 0.0036904111330704806, 0.0035989256382543216,
    0.0034970717941925676, 0.003385510162148497, 0.0032649642621156347,
    0.003136215880512965, 0.0030001, 0.002857499384293827, 0.002709338853107662,
    0.002556579284340122, 0.0024002113824133334, 0.0022412492531745944,
    0.002080723827030808, 0.001919676172969192, 0.0017591507468254052,
    0.0016001886175866665, 0.0014438207156598779, 0.001291061146892337,
    0.0011429006157061719, 0.0010003000000000004, 0.0008641841194870348,
    0.0007354357378843647, 0.0006148898378515031, 0.0005033282058074318,
    0.0004014743617456788, 0.0003099888669295196, 0.00022946503989871106,
    0.0001604251085710833, 0.00010331682339409845, 5.851055351138119e-05,
    2.629688477670189e-05, 6.884735193206983e-06, 4e-07,
]


def test_one_cycle_torch_three_phase_phase_ends_are_exact():
  # float32 phase ends (0.3 * 95 - 1 -> 27.500002, 2 * 0.3 * 95 - 2 -> 55.000004) gave
  # 3.4e-6 (linear) / 1.1e-6 (cos) relative error at steps 55 / 52.
  for strategy, ref in (("linear", ONECYCLE_THREE_PHASE_95_LINEAR),
                        ("cos", ONECYCLE_THREE_PHASE_95_COS)):
    sched = S.one_cycle_torch(0.1, 95, pct_start=0.3, anneal_strategy=strategy,
                              three_phase=True)
    assert_matches(sched, ref, rtol=4e-7)
    assert_matches(jax.jit(sched), ref, rtol=4e-7)


def test_one_cycle_torch_matches_torch_onecyclelr():
  assert_matches(S.one_cycle_torch(0.1, 50), ONECYCLE_COS)
  assert_matches(S.one_cycle_torch(0.1, 50, anneal_strategy="linear"), ONECYCLE_LINEAR)
  assert_matches(S.one_cycle_torch(0.1, 50, pct_start=0.25, anneal_strategy="linear",
                                   div_factor=10.0, final_div_factor=100.0, three_phase=True),
                 ONECYCLE_THREE_PHASE)
  assert_matches(S.one_cycle_torch(0.5, 37, pct_start=0.33, div_factor=5.0,
                                   final_div_factor=50.0), ONECYCLE_COS_PCT_ODD)
  # holds the final rate after the last step (PyTorch raises there)
  lrs = values(S.one_cycle_torch(0.1, 50), 60)
  assert np.all(lrs[49:] == lrs[49])


def test_lr_range_test_matches_formula():
  for init, peak, n in [(1e-4, 10.0, 100), (1e-3, 100.0, 250), (0.01, 0.02, 7)]:
    ref = [init * (peak / init) ** (min(i, n) / n) for i in range(n + 10)]
    assert_matches(S.lr_range_test(init, peak, n), ref)


# -----------------------------------------------------------------------------------
# The report's sequences and `switch`
# -----------------------------------------------------------------------------------


def test_report_sequences_match_the_report():
  r0 = 0.01
  formulas = {
      "seq1": lambda n: r0 / n,
      "seq2": lambda n: r0 / math.sqrt(n),
      "seq3": lambda n: 0.9 ** n * r0,
      "seq4": lambda n: (1 - ((n - 1) % 10) / 10) * (1 / (math.floor(n / 10) + 1)) * r0,
  }
  for name, formula in formulas.items():
    sched = S.REPORT_SEQUENCES[name](r0)
    assert_matches(sched, [r0] + [formula(n) for n in range(1, 101)])
  assert_matches(S.seq3(0.1, decay=0.5), [0.1] + [0.5 ** n * 0.1 for n in range(1, 60)])
  assert_matches(S.seq4(0.1, period=4),
                 [0.1] + [(1 - ((n - 1) % 4) / 4) / (n // 4 + 1) * 0.1 for n in range(1, 60)])


def test_switch_under_vmap():
  bank = [S.seq1(0.01), S.seq2(0.01), S.seq3(0.01), S.seq4(0.01), S.triangular(0.001, 0.006, 5)]
  steps = jnp.arange(30)
  got = jax.jit(jax.vmap(lambda i: S.switch(bank, i)(steps)))(jnp.arange(len(bank)))
  want = np.stack([np.asarray(s(steps)) for s in bank])
  np.testing.assert_allclose(np.asarray(got), want, rtol=RTOL)
  # ... and vmapped over the step and the index together
  idx = jnp.asarray([3, 0, 4, 1])
  pairs = jax.jit(jax.vmap(lambda i, t: S.switch(bank, i)(t)))(idx, jnp.asarray([11, 2, 7, 4]))
  np.testing.assert_allclose(np.asarray(pairs),
                             [float(bank[i](t))
                              for i, t in zip([3, 0, 4, 1], [11, 2, 7, 4], strict=True)],
                             rtol=RTOL)


# -----------------------------------------------------------------------------------
# Every schedule: jit with a traced int step, vectors of steps, vmap over hyperparameters
# -----------------------------------------------------------------------------------

# name -> (factory, static kwargs, three variants of the numeric hyperparameters)
VARIANTS = {
    "constant": (S.constant, {}, [dict(learning_rate=v) for v in (0.01, 0.1, 0.5)]),
    "seq1": (S.seq1, {}, [dict(r0=v) for v in (0.01, 0.1, 1.0)]),
    "seq2": (S.seq2, {}, [dict(r0=v) for v in (0.01, 0.1, 1.0)]),
    "seq3": (S.seq3, {}, [dict(r0=0.01, decay=0.9), dict(r0=0.1, decay=0.5),
                          dict(r0=1.0, decay=0.99)]),
    "seq4": (S.seq4, {}, [dict(r0=0.01, period=10), dict(r0=0.1, period=3),
                          dict(r0=1.0, period=7)]),
    "step_decay": (S.step_decay, {}, [dict(r0=0.1, drop=0.5, step_size=10),
                                      dict(r0=1.0, drop=0.9, step_size=3),
                                      dict(r0=0.3, drop=0.8, step_size=7.5)]),
    "keras_step_decay": (S.keras_step_decay, {}, [dict(r0=0.1, drop=0.5, epochs_drop=10),
                                                  dict(r0=1.0, drop=0.9, epochs_drop=3),
                                                  dict(r0=0.3, drop=0.8, epochs_drop=7.0)]),
    "exponential_decay": (S.exponential_decay, {}, [dict(r0=1.0, k=0.05), dict(r0=0.1, k=0.0),
                                                    dict(r0=2.0, k=0.1)]),
    "inverse_time_decay": (S.inverse_time_decay, {}, [dict(r0=1.0, k=0.05), dict(r0=0.1, k=0.0),
                                                      dict(r0=2.0, k=1.0)]),
    "keras_time_based_decay": (S.keras_time_based_decay, {},
                               [dict(learning_rate=0.1, decay=0.002),
                                dict(learning_rate=0.01, decay=0.0),
                                dict(learning_rate=1.0, decay=0.5)]),
    "polynomial_decay": (S.polynomial_decay, {},
                         [dict(r0=0.1, total_steps=50, power=1.0, end_value=0.0),
                          dict(r0=1.0, total_steps=20, power=2.0, end_value=0.1),
                          dict(r0=0.5, total_steps=90, power=0.5, end_value=0.01)]),
    "cosine_annealing": (S.cosine_annealing, {},
                         [dict(max_lr=0.1, total_steps=50, min_lr=0.001),
                          dict(max_lr=1.0, total_steps=20, min_lr=0.0),
                          dict(max_lr=0.5, total_steps=90, min_lr=0.4)]),
    "cosine_warm_restarts": (S.cosine_warm_restarts, {},
                             [dict(max_lr=0.1, first_cycle_steps=5, cycle_mult=2, min_lr=0.001),
                              dict(max_lr=1.0, first_cycle_steps=7, cycle_mult=1, min_lr=0.0),
                              dict(max_lr=0.5, first_cycle_steps=2, cycle_mult=3, min_lr=0.1)]),
    "one_cycle": (S.one_cycle, {},
                  [dict(min_lr=0.08, max_lr=0.8, step_size=41, total_steps=95,
                        annihilation_factor=10.0),
                   dict(min_lr=0.01, max_lr=0.1, step_size=10, total_steps=20,
                        annihilation_factor=100.0),
                   dict(min_lr=0.1, max_lr=0.2, step_size=3, total_steps=50,
                        annihilation_factor=1.0)]),
    "lr_range_test": (S.lr_range_test, {},
                      [dict(init_lr=1e-4, max_lr=10.0, num_steps=100),
                       dict(init_lr=1e-3, max_lr=1e-3, num_steps=10),
                       dict(init_lr=0.01, max_lr=1.0, num_steps=37)]),
}
_CYC = [dict(min_lr=0.001, max_lr=0.006, step_size=5, step_size_down=5, gamma=0.95),
        dict(min_lr=0.0, max_lr=1.0, step_size=4, step_size_down=2, gamma=0.99),
        dict(min_lr=0.1, max_lr=0.1, step_size=2.5, step_size_down=7, gamma=1.0)]
for _mode, _window in [("triangular", "hann"), ("triangular2", "welch"),
                      ("exp_range", "triangular"), ("exp_range", "hann")]:
  VARIANTS[f"cyclical_{_mode}_{_window}"] = (S.cyclical, dict(mode=_mode, window=_window), _CYC)
VARIANTS["triangular"] = (S.triangular, {}, [{k: v for k, v in c.items() if k != "gamma"}
                                             for c in _CYC])
VARIANTS["triangular2"] = (S.triangular2, {}, VARIANTS["triangular"][2])
VARIANTS["exp_range"] = (S.exp_range, {}, _CYC)
VARIANTS["welch"] = (S.welch, {}, VARIANTS["triangular"][2])
VARIANTS["hann"] = (S.hann, {}, VARIANTS["triangular"][2])
_OC = [dict(max_lr=0.1, total_steps=50, pct_start=0.3, div_factor=25.0, final_div_factor=1e4),
       dict(max_lr=0.5, total_steps=37, pct_start=0.33, div_factor=5.0, final_div_factor=50.0),
       dict(max_lr=1.0, total_steps=90, pct_start=0.1, div_factor=10.0, final_div_factor=10.0)]
for _strategy, _three in [("cos", False), ("linear", True)]:
  VARIANTS[f"one_cycle_torch_{_strategy}_{'three' if _three else 'two'}"] = (
      S.one_cycle_torch, dict(anneal_strategy=_strategy, three_phase=_three), _OC)

# the porting / today's-practice modules are covered by tests/test_schedules_porting.py
PORTING_MODULES = ("torch_compat", "keras_compat", "warmups", "momentum", "compose", "porting")


def test_every_public_schedule_is_covered():
  factories = {v[0] for v in VARIANTS.values()}
  public = {getattr(S, name) for name in S.__all__
            # switch and from_values take schedules / a table, not scalar hyperparameters
            # (tested on their own: tests/test_search.py for from_values).
            if callable(getattr(S, name)) and name not in ("Schedule", "switch", "from_values")
            and getattr(S, name).__module__.rsplit(".", 1)[-1] not in PORTING_MODULES}
  assert public <= factories


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_jit_vector_and_vmap(name):
  factory, static, variants = VARIANTS[name]
  check_jit_vector_and_vmap(factory, static, variants, rtol=RTOL, vmap_rtol=RTOL, vmap_atol=0)


def test_vmap_over_a_single_hyperparameter_with_a_traced_step():
  r0s = jnp.asarray([0.01, 0.1, 1.0])
  got = jax.jit(jax.vmap(lambda r0, t: S.step_decay(r0, 0.5, 10)(t), in_axes=(0, None)))(
      r0s, jnp.asarray(25, jnp.int32))
  np.testing.assert_allclose(np.asarray(got), np.asarray(r0s) * 0.25, rtol=RTOL)


# -----------------------------------------------------------------------------------
# Properties (hypothesis)
# -----------------------------------------------------------------------------------

r0s = st.floats(1e-5, 10.0)
# a lower bound as a fraction of the upper one: 0 or a normal float32 (XLA flushes
# subnormals to zero, so a bound of 1e-40 would read as 0 inside the schedule)
fracs = st.one_of(st.just(0.0), st.floats(1e-6, 1.0))
drops = st.floats(0.01, 1.0)
lengths = st.integers(1, 200)
PROP_STEPS = jnp.arange(0, 600, dtype=jnp.int32)


def _assert_decay(lrs, r0, low=0.0, strict_low=True):
  lrs = np.asarray(lrs, np.float64)
  top, low = f32(r0), f32(low)
  assert np.all(lrs <= top * (1 + 1e-6))
  assert np.all(lrs > low) if strict_low else np.all(lrs >= low * (1 - 1e-6))
  assert np.all(np.diff(lrs) <= 1e-6 * top)


@SETTINGS
@given(r0=r0s, drop=drops, step=st.floats(0.5, 100.0))
def test_step_decays_are_non_increasing_in_range(r0, drop, step):
  for sched in (S.step_decay(r0, drop, step), S.keras_step_decay(r0, drop, step)):
    lrs = np.asarray(sched(PROP_STEPS), np.float64)
    _assert_decay(lrs, r0, strict_low=False)
    assert np.all(lrs >= 0)


@SETTINGS
@given(r0=r0s, k=st.one_of(st.just(0.0), st.floats(1e-30, 0.05)))  # no float32 denormal
def test_smooth_decays_are_non_increasing_in_range(r0, k):
  for sched in (S.exponential_decay(r0, k), S.inverse_time_decay(r0, k),
                S.keras_time_based_decay(r0, k)):
    _assert_decay(sched(PROP_STEPS), r0)
  for sched in (S.seq1(r0), S.seq2(r0), S.seq3(r0, decay=0.9)):
    _assert_decay(sched(jnp.arange(0, 100)), r0)


@SETTINGS
@given(r0=r0s, total=lengths, power=st.floats(0.1, 5.0), end_frac=fracs)
def test_polynomial_decay_is_non_increasing_between_end_and_r0(r0, total, power, end_frac):
  end = r0 * end_frac
  lrs = np.asarray(S.polynomial_decay(r0, total, power, end)(PROP_STEPS), np.float64)
  _assert_decay(lrs, r0, low=end, strict_low=False)
  assert lrs[-1] == pytest.approx(f32(end), rel=1e-6)


@SETTINGS
@given(hi=r0s, frac=fracs, total=lengths, t0=st.integers(1, 50),
       mult=st.integers(1, 3))
def test_cosine_schedules_stay_within_min_max(hi, frac, total, t0, mult):
  lo = hi * frac
  lrs = np.asarray(S.cosine_annealing(hi, total, lo)(PROP_STEPS), np.float64)
  assert np.all(lrs >= f32(lo) * (1 - 1e-6)) and np.all(lrs <= f32(hi) * (1 + 1e-6))
  assert np.all(np.diff(lrs) <= 1e-6 * hi)
  lrs = np.asarray(S.cosine_warm_restarts(hi, t0, mult, lo)(PROP_STEPS), np.float64)
  assert np.all(lrs >= f32(lo) * (1 - 1e-6)) and np.all(lrs <= f32(hi) * (1 + 1e-6))
  assert lrs[0] == pytest.approx(hi, rel=1e-6)


@SETTINGS
@given(hi=r0s, frac=fracs, up=st.floats(0.5, 100.0), down=st.floats(0.5, 100.0),
       gamma=st.floats(0.9, 1.0), mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
       window=st.sampled_from(["triangular", "welch", "hann"]))
def test_cyclical_stays_within_min_max(hi, frac, up, down, gamma, mode, window):
  lo = hi * frac
  sched = S.cyclical(lo, hi, up, step_size_down=down, mode=mode, gamma=gamma, window=window)
  lrs = np.asarray(sched(PROP_STEPS), np.float64)
  assert np.all(lrs >= f32(lo) * (1 - 1e-6)) and np.all(lrs <= f32(hi) * (1 + 1e-6))
  assert lrs[0] == pytest.approx(f32(lo), rel=1e-6)


@SETTINGS
@given(init=st.floats(1e-6, 1.0), ratio=st.floats(1.5, 1e5), n=st.integers(1, 500))
def test_range_test_is_increasing(init, ratio, n):
  lrs = np.asarray(S.lr_range_test(init, init * ratio, n)(PROP_STEPS), np.float64)[:n + 1]
  assert np.all(np.diff(lrs) > 0)
  assert lrs[0] == pytest.approx(init, rel=1e-6)
  assert lrs[-1] == pytest.approx(init * ratio, rel=1e-6)


@SETTINGS
@given(lo=st.floats(1e-4, 1.0), ratio=st.floats(1.0, 20.0), s=st.integers(1, 100),
       extra=st.integers(0, 100), factor=st.floats(1.0, 1000.0))
def test_one_cycle_rises_then_falls(lo, ratio, s, extra, factor):
  hi = lo * ratio
  lrs = np.asarray(S.one_cycle(lo, hi, s, 2 * s + extra, factor)(PROP_STEPS), np.float64)
  assert np.all(lrs >= f32(lo / factor) * (1 - 1e-6)) and np.all(lrs <= f32(hi) * (1 + 1e-6))
  assert np.all(np.diff(lrs[:s + 1]) >= -1e-6 * hi)
  assert np.all(np.diff(lrs[s:]) <= 1e-6 * hi)


@SETTINGS
@given(hi=r0s, total=st.integers(2, 400), pct=st.floats(0.05, 0.5), div=st.floats(1.0, 100.0),
       final_div=st.floats(1.0, 1e4), strategy=st.sampled_from(["cos", "linear"]),
       three=st.booleans())
def test_one_cycle_torch_stays_within_bounds(hi, total, pct, div, final_div, strategy, three):
  sched = S.one_cycle_torch(hi, total, pct_start=pct, anneal_strategy=strategy,
                            div_factor=div, final_div_factor=final_div, three_phase=three)
  lrs = np.asarray(sched(PROP_STEPS), np.float64)
  assert np.all(np.isfinite(lrs))
  assert np.all(lrs >= f32(hi / div / final_div) * (1 - 1e-5))
  assert np.all(lrs <= f32(hi) * (1 + 1e-6))


# -----------------------------------------------------------------------------------
# Every schedule over the whole int32 step range (schedules once gave NaN at large step counts)
# -----------------------------------------------------------------------------------

INT32_MAX = 2 ** 31 - 1
# fixed edge steps (0, powers of two where float32 stops holding every integer, the
# last int32) plus steps drawn anywhere in [0, 2**31 - 1]
EDGE_STEPS = [0, 1, 2, 99, 2 ** 15, 2 ** 24 - 1, 2 ** 24 + 1, 10 ** 9, INT32_MAX - 1,
              INT32_MAX]
NUM_DRAWN_STEPS = 6
int32_steps = st.lists(st.integers(0, INT32_MAX), min_size=NUM_DRAWN_STEPS,
                       max_size=NUM_DRAWN_STEPS)

rates = st.floats(1e-6, 10.0)
fractions = st.one_of(st.just(0.0), st.just(1.0), st.floats(1e-6, 1.0))
factors = st.one_of(st.just(1.0), st.floats(1e-3, 1.0))  # gamma / decay / drop in (0, 1]
spans = st.one_of(st.floats(1e-3, 1e7), st.integers(1, INT32_MAX).map(float))
ints = st.one_of(st.integers(1, 100), st.integers(1, INT32_MAX))
decay_rates = st.one_of(st.just(0.0), st.floats(1e-6, 10.0))
F = np.float32


def _cyc_hp(gamma=False):
  def make(hi, frac, up, down, g):
    hp = dict(min_lr=hi * frac, max_lr=hi, step_size=up, step_size_down=down)
    if gamma:
      hp["gamma"] = g
    return hp
  return st.builds(make, rates, fractions, spans, spans, factors)


def _one_cycle_hp():
  def make(lo, ratio, s, extra, factor):
    s = min(s, INT32_MAX // 2)
    return dict(min_lr=lo, max_lr=lo * ratio, step_size=s,
                total_steps=min(2 * s + extra, INT32_MAX), annihilation_factor=factor)
  return st.builds(make, rates, st.floats(1.0, 100.0), ints, st.integers(0, INT32_MAX),
                   st.floats(1.0, 1e4))


def _one_cycle_torch_floor(hp):
  """The lowest of PyTorch's three rates (``div_factor`` / ``final_div_factor`` < 1
  make the initial / final rate the highest)."""
  initial = F(hp["max_lr"]) / F(hp["div_factor"])
  floor = min(F(hp["max_lr"]), initial, initial / F(hp["final_div_factor"]))
  # one float32 rounding lower: under jit XLA rewrites (a / b) / c into a / (b * c)
  return np.nextafter(floor, F(0))


# name -> (factory, static kwargs, strategy of valid numeric kwargs, float32 floor)
RANGE_CASES = {
    "constant": (S.constant, {}, st.builds(dict, learning_rate=rates),
                 lambda hp: F(hp["learning_rate"])),
    "seq1": (S.seq1, {}, st.builds(dict, r0=rates), lambda hp: 0.0),
    "seq2": (S.seq2, {}, st.builds(dict, r0=rates), lambda hp: 0.0),
    "seq3": (S.seq3, {}, st.builds(dict, r0=rates, decay=factors), lambda hp: 0.0),
    "seq4": (S.seq4, {}, st.builds(dict, r0=rates, period=ints), lambda hp: 0.0),
    "step_decay": (S.step_decay, {}, st.builds(dict, r0=rates, drop=factors, step_size=spans),
                   lambda hp: 0.0),
    "keras_step_decay": (S.keras_step_decay, {},
                         st.builds(dict, r0=rates, drop=factors, epochs_drop=spans),
                         lambda hp: 0.0),
    "exponential_decay": (S.exponential_decay, {}, st.builds(dict, r0=rates, k=decay_rates),
                          lambda hp: 0.0),
    "inverse_time_decay": (S.inverse_time_decay, {},
                           st.builds(dict, r0=rates, k=decay_rates), lambda hp: 0.0),
    "keras_time_based_decay": (S.keras_time_based_decay, {},
                               st.builds(dict, learning_rate=rates, decay=decay_rates),
                               lambda hp: 0.0),
    "polynomial_decay": (
        S.polynomial_decay, {},
        st.builds(lambda r0, t, p, f: dict(r0=r0, total_steps=t, power=p, end_value=r0 * f),
                  rates, ints, st.floats(0.1, 10.0), fractions),
        lambda hp: F(hp["end_value"])),
    "cosine_annealing": (
        S.cosine_annealing, {},
        st.builds(lambda hi, t, f: dict(max_lr=hi, total_steps=t, min_lr=hi * f),
                  rates, ints, fractions),
        lambda hp: F(hp["min_lr"])),
    "cosine_warm_restarts": (
        S.cosine_warm_restarts, {},
        st.builds(lambda hi, t0, m, f: dict(max_lr=hi, first_cycle_steps=t0, cycle_mult=m,
                                            min_lr=hi * f),
                  rates, ints, st.one_of(st.integers(1, 4), ints), fractions),
        lambda hp: F(hp["min_lr"])),
    "one_cycle": (S.one_cycle, {}, _one_cycle_hp(),
                  lambda hp: F(hp["min_lr"]) / F(hp["annihilation_factor"])),
    "lr_range_test": (
        S.lr_range_test, {},
        st.builds(lambda init, ratio, n: dict(init_lr=init, max_lr=init * ratio, num_steps=n),
                  rates, st.floats(1.0, 1e6), ints),
        lambda hp: F(hp["init_lr"])),
}
for _mode in ("triangular", "triangular2", "exp_range"):
  for _window in ("triangular", "welch", "hann"):
    RANGE_CASES[f"cyclical_{_mode}_{_window}"] = (
        S.cyclical, dict(mode=_mode, window=_window), _cyc_hp(gamma=True),
        lambda hp: F(hp["min_lr"]))
for _name in ("triangular", "triangular2", "welch", "hann"):
  RANGE_CASES[_name] = (getattr(S, _name), {}, _cyc_hp(), lambda hp: F(hp["min_lr"]))
RANGE_CASES["exp_range"] = (S.exp_range, {}, _cyc_hp(gamma=True), lambda hp: F(hp["min_lr"]))
for _strategy in ("cos", "linear"):
  for _three in (False, True):
    RANGE_CASES[f"one_cycle_torch_{_strategy}_{_three}"] = (
        S.one_cycle_torch, dict(anneal_strategy=_strategy, three_phase=_three),
        st.builds(dict, max_lr=rates, total_steps=ints,
                  pct_start=fractions,
                  div_factor=st.floats(0.5, 1e4), final_div_factor=st.floats(0.5, 1e5)),
        _one_cycle_torch_floor)


def _traced_hp(hps):
  """Two hyperparameter dicts stacked into arrays (float32 / int32) to vmap over."""
  return {k: jnp.asarray([hp[k] for hp in hps],
                         jnp.int32 if isinstance(hps[0][k], int) else jnp.float32)
          for k in hps[0]}


_TRACED_RUNS = {}


def _traced_run(name):
  """jit(vmap(hp -> schedule(steps))) per case, built once (compiled once per case)."""
  if name not in _TRACED_RUNS:
    factory, static = RANGE_CASES[name][:2]
    _TRACED_RUNS[name] = jax.jit(jax.vmap(lambda hp, t: factory(**hp, **static)(t),
                                          in_axes=(0, None)))
  return _TRACED_RUNS[name]


def _assert_in_range(lrs, floor, what):
  lrs = np.asarray(lrs)
  assert lrs.dtype == np.float32, what
  assert np.all(np.isfinite(lrs)), (what, lrs)
  assert np.all(lrs >= 0), (what, lrs)
  assert np.all(lrs >= F(floor)), (what, float(F(floor)), lrs)


@pytest.mark.parametrize("name", sorted(RANGE_CASES))
def test_every_schedule_is_finite_and_above_its_floor_over_int32(name):
  factory, static, hp_strategy, floor = RANGE_CASES[name]

  @settings(max_examples=10, deadline=None)
  @given(hp=hp_strategy, other=hp_strategy, drawn=int32_steps)
  def check(hp, other, drawn):
    steps = np.asarray(EDGE_STEPS + drawn, np.int32)
    sched = factory(**hp, **static)
    # concrete hyperparameters: eager vector of steps, Python int steps, traced steps
    _assert_in_range(sched(jnp.asarray(steps)), floor(hp), "eager")
    for t in (0, INT32_MAX, int(drawn[0])):
      _assert_in_range(sched(t), floor(hp), f"python int {t}")
    _assert_in_range(jax.jit(sched)(jnp.asarray(steps)), floor(hp), "jit step")
    # traced hyperparameters (vmapped over two draws) and a traced step
    got = _traced_run(name)(_traced_hp([hp, other]), jnp.asarray(steps))
    _assert_in_range(got[0], floor(hp), "traced hp")
    _assert_in_range(got[1], floor(other), "traced hp (other)")

  check()


def test_every_public_schedule_is_range_tested():
  factories = {v[0] for v in RANGE_CASES.values()}
  # The PyTorch/Keras ports, warm-ups, momentum schedules and composition have their own
  # int32 range test (tests/test_schedules_porting.py, which checks its own coverage).
  ported = {getattr(module, name) for module in (S.torch_compat, S.keras_compat, S.warmups,
                                                 S.momentum, S.compose, S.porting)
            for name in module.__all__ if callable(getattr(module, name))}
  public = {getattr(S, name) for name in S.__all__
            # switch and from_values take schedules / a table, not scalar hyperparameters
            # (tested on their own: tests/test_search.py for from_values).
            if callable(getattr(S, name)) and name not in ("Schedule", "switch", "from_values")}
  assert public - ported <= factories, public - ported - factories


def test_switch_is_finite_over_int32():
  bank = [S.seq3(0.01, 0.9), S.exp_range(0.001, 0.1, 10, gamma=0.99), S.step_decay(0.1, 0.13, 1)]
  steps = jnp.asarray(EDGE_STEPS, jnp.int32)
  got = jax.jit(jax.vmap(lambda i: S.switch(bank, i)(steps)))(jnp.arange(3))
  _assert_in_range(got, 0.0, "switch")
  assert np.all(np.asarray(got[1])[-3:] >= F(0.001))


@pytest.mark.parametrize("factory,args,kwargs,step,expected", [
    # the issue's examples: NaN from these steps on before the fix
    (S.seq3, (0.01, 0.9), {}, 819_730, 0.0),
    (S.exponential_decay, (0.1, 0.05), {}, 1_817_044, 0.0),
    (S.exp_range, (0.001, 0.1, 10), dict(gamma=0.99), 4_335_361, 0.001),  # holds min_lr
    (S.step_decay, (0.1, 0.13), dict(step_size=1), 13_334, 0.0),
])
def test_issue_examples_at_large_steps(factory, args, kwargs, step, expected):
  sched = factory(*args, **kwargs)
  for t in (step, step + 1, 2 * step, INT32_MAX):
    for out in (sched(t), jax.jit(sched)(jnp.asarray(t, jnp.int32))):
      assert float(out) == pytest.approx(expected, rel=1e-6, abs=0), (t, float(out))
  # ... and with the hyperparameters traced
  traced = jax.jit(lambda a, t: factory(*a, **kwargs)(t))(
      tuple(jnp.float32(a) for a in args), jnp.asarray(step, jnp.int32))
  assert float(traced) == pytest.approx(expected, rel=1e-6, abs=0)


# -----------------------------------------------------------------------------------
# Validation
# -----------------------------------------------------------------------------------

BAD = [
    (S.constant, dict(learning_rate=0.0), "learning_rate"),
    (S.seq1, dict(r0=0.0), "r0"),
    (S.seq3, dict(r0=0.1, decay=1.5), "decay"),
    (S.seq4, dict(r0=0.1, period=0), "period"),
    (S.step_decay, dict(r0=0.0), "r0"),
    (S.step_decay, dict(r0=float("nan")), "r0"),
    (S.step_decay, dict(r0=0.1, drop=1.5), "drop"),
    (S.step_decay, dict(r0=0.1, drop=0.0), "drop"),
    (S.step_decay, dict(r0=0.1, step_size=0), "step_size"),
    (S.keras_step_decay, dict(r0=-1.0), "r0"),
    (S.keras_step_decay, dict(r0=0.1, epochs_drop=0.0), "epochs_drop"),
    (S.exponential_decay, dict(r0=0.0, k=0.1), "r0"),
    (S.exponential_decay, dict(r0=0.1, k=-0.1), "k"),
    (S.inverse_time_decay, dict(r0=0.1, k=-1.0), "k"),
    (S.keras_time_based_decay, dict(learning_rate=0.0, decay=0.1), "learning_rate"),
    (S.keras_time_based_decay, dict(learning_rate=0.1, decay=-0.1), "decay"),
    (S.polynomial_decay, dict(r0=0.0, total_steps=10), "r0"),
    (S.polynomial_decay, dict(r0=0.1, total_steps=0), "total_steps"),
    (S.polynomial_decay, dict(r0=0.1, total_steps=2.5), "total_steps"),
    (S.polynomial_decay, dict(r0=0.1, total_steps=10, power=0.0), "power"),
    (S.polynomial_decay, dict(r0=0.1, total_steps=10, end_value=0.2), "end_value"),
    (S.cosine_annealing, dict(max_lr=0.0, total_steps=10), "max_lr"),
    (S.cosine_annealing, dict(max_lr=0.1, total_steps=0), "total_steps"),
    (S.cosine_annealing, dict(max_lr=0.1, total_steps=10, min_lr=0.2), "min_lr"),
    (S.cosine_annealing, dict(max_lr=0.1, total_steps=10, min_lr=-0.1), "min_lr"),
    (S.cosine_warm_restarts, dict(max_lr=0.1, first_cycle_steps=0), "first_cycle_steps"),
    (S.cosine_warm_restarts, dict(max_lr=0.1, first_cycle_steps=5, cycle_mult=0), "cycle_mult"),
    (S.cosine_warm_restarts, dict(max_lr=0.1, first_cycle_steps=5, cycle_mult=1.5),
     "cycle_mult"),
    (S.cosine_warm_restarts, dict(max_lr=0.1, first_cycle_steps=5, min_lr=1.0), "min_lr"),
    (S.cyclical, dict(min_lr=0.1, max_lr=0.01, step_size=5), "min_lr"),
    (S.cyclical, dict(min_lr=0.001, max_lr=0.0, step_size=5), "max_lr"),
    (S.cyclical, dict(min_lr=0.001, max_lr=0.01, step_size=0), "step_size"),
    (S.cyclical, dict(min_lr=0.001, max_lr=0.01, step_size=5, step_size_down=0),
     "step_size_down"),
    (S.cyclical, dict(min_lr=0.001, max_lr=0.01, step_size=5, gamma=0.0), "gamma"),
    (S.cyclical, dict(min_lr=0.001, max_lr=0.01, step_size=5, gamma=1.5), "gamma"),
    (S.cyclical, dict(min_lr=0.001, max_lr=0.01, step_size=5, mode="cosine"), "mode"),
    (S.cyclical, dict(min_lr=0.001, max_lr=0.01, step_size=5, window="box"), "window"),
    (S.exp_range, dict(min_lr=0.001, max_lr=0.01, step_size=5, gamma=-1.0), "gamma"),
    (S.welch, dict(min_lr=0.001, max_lr=0.01, step_size=-1), "step_size"),
    (S.hann, dict(min_lr=-0.001, max_lr=0.01, step_size=5), "min_lr"),
    (S.triangular2, dict(min_lr=0.02, max_lr=0.01, step_size=5), "min_lr"),
    (S.one_cycle, dict(min_lr=0.0, max_lr=0.8, step_size=41, total_steps=95), "min_lr"),
    (S.one_cycle, dict(min_lr=0.8, max_lr=0.08, step_size=41, total_steps=95), "min_lr"),
    (S.one_cycle, dict(min_lr=0.08, max_lr=0.8, step_size=0, total_steps=95), "step_size"),
    (S.one_cycle, dict(min_lr=0.08, max_lr=0.8, step_size=41, total_steps=80), "total_steps"),
    (S.one_cycle, dict(min_lr=0.08, max_lr=0.8, step_size=41, total_steps=95,
                       annihilation_factor=0.5), "annihilation_factor"),
    (S.one_cycle_torch, dict(max_lr=0.0, total_steps=10), "max_lr"),
    (S.one_cycle_torch, dict(max_lr=0.1, total_steps=0), "total_steps"),
    (S.one_cycle_torch, dict(max_lr=0.1, total_steps=10, pct_start=1.5), "pct_start"),
    (S.one_cycle_torch, dict(max_lr=0.1, total_steps=10, div_factor=0.0), "div_factor"),
    (S.one_cycle_torch, dict(max_lr=0.1, total_steps=10, final_div_factor=-1.0),
     "final_div_factor"),
    (S.one_cycle_torch, dict(max_lr=0.1, total_steps=10, anneal_strategy="exp"),
     "anneal_strategy"),
    (S.lr_range_test, dict(init_lr=0.0, max_lr=10.0, num_steps=100), "init_lr"),
    (S.lr_range_test, dict(init_lr=1.0, max_lr=0.1, num_steps=100), "init_lr"),
    (S.lr_range_test, dict(init_lr=1e-4, max_lr=10.0, num_steps=0), "num_steps"),
    (S.switch, dict(schedules=[], index=0), "schedules"),
]


@pytest.mark.parametrize("factory,kwargs,arg", BAD,
                         ids=[f"{f.__name__}-{a}-{i}" for i, (f, _, a) in enumerate(BAD)])
def test_bad_hyperparameters_raise_naming_the_argument(factory, kwargs, arg):
  with pytest.raises(ValueError, match=f"`{arg}`"):
    factory(**kwargs)


# -----------------------------------------------------------------------------------
# Optax integration
# -----------------------------------------------------------------------------------

SCHEDULE = S.one_cycle_torch(0.1, 20)


def test_works_in_optax_sgd():
  opt = optax.sgd(learning_rate=SCHEDULE)
  params = jnp.zeros(3)
  state = opt.init(params)

  @jax.jit
  def step(params, state):
    updates, state = opt.update(jnp.ones(3), state, params)
    return optax.apply_updates(params, updates), state

  for _ in range(5):
    params, state = step(params, state)
  expected = -sum(float(SCHEDULE(t)) for t in range(5))
  np.testing.assert_allclose(np.asarray(params), expected, rtol=RTOL)


def test_works_in_inject_hyperparams():
  opt = optax.inject_hyperparams(optax.sgd)(learning_rate=S.cosine_warm_restarts(0.1, 3, 2, 0.01))
  sched = S.cosine_warm_restarts(0.1, 3, 2, 0.01)
  state = opt.init(jnp.zeros(2))
  update = jax.jit(opt.update)
  for t in range(12):
    updates, state = update(jnp.ones(2), state)
    np.testing.assert_allclose(np.asarray(updates), -float(sched(t)), rtol=RTOL)
    np.testing.assert_allclose(float(state.hyperparams["learning_rate"]), float(sched(t)),
                               rtol=RTOL)


def test_works_in_join_schedules():
  warmup = optax.linear_schedule(0.0, 0.1, 5)
  joined = optax.join_schedules([warmup, S.cosine_annealing(0.1, 20, 0.001),
                                 S.triangular(0.001, 0.01, 4)], [5, 25])
  got = values(joined, 40)
  cosine, cyc = S.cosine_annealing(0.1, 20, 0.001), S.triangular(0.001, 0.01, 4)
  want = np.concatenate([optax_values(warmup, 5), values(cosine, 20), values(cyc, 15)])
  np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-9)


# -----------------------------------------------------------------------------------
# The plot command
# -----------------------------------------------------------------------------------


def test_plot_command_writes_pngs(tmp_path):
  spec = importlib.util.spec_from_file_location(
      "plot_schedules", ROOT / "experiments" / "plot_schedules.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  from figures import capture_figures
  with capture_figures() as figures:
    paths = module.main(["--out", str(tmp_path / "schedules"), "--dpi", "40",
                         "--epochs", "60"])
  names = {p.name for p in map(pathlib.Path, paths)}
  assert {"report_sequences.png", "schedules_grid.png", "porting_grid.png"} <= names
  for path in paths:
    assert pathlib.Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  # Every panel plots its schedule's own values over the 60 steps (not a neighbour's).
  grid = figures["schedules_grid.png"]
  entries = module.comparison(60)
  assert len(grid) == len(entries)
  for line, (title, sched, _) in zip(grid, entries, strict=True):
    assert line.axes == title
    np.testing.assert_array_equal(line.x, np.arange(60))
    np.testing.assert_allclose(line.y, np.asarray(sched(jnp.arange(60))), rtol=1e-6)
  porting = figures["porting_grid.png"]
  assert len(porting) == sum(len(curves) for _, curves, _ in module.porting(60))
  # Figure 1: seq1..seq4 (r0 = 0.01) against n = 1..50, each its own sequence.
  report = {l.label: l for l in figures["report_sequences.png"]}
  assert sorted(report) == ["seq1", "seq2", "seq3", "seq4"]
  for name, line in report.items():
    np.testing.assert_array_equal(line.x, np.arange(1, 51))
    expected = np.asarray(getattr(S, name)(0.01)(jnp.arange(1, 51)))
    np.testing.assert_allclose(line.y, expected, rtol=1e-6)
