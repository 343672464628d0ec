"""Tests of the porting schedules (PyTorch, Keras), warm-ups, WSD, momentum schedules.

References: PyTorch scheduler values pasted below as constants (`get_last_lr()[0]` or
`param_groups[0]['momentum']` after k calls of `optimizer.step(); scheduler.step()`,
k = 0, 1, ..., with `p = nn.Parameter(zeros(1))`; the tests do not import torch), at
1e-6 relative; the Keras documentation's formulas in float64 Python at 1e-6 relative,
plus Keras' own float32 values as a cross-check (at 1e-5: Keras computes in float32);
the formulas of the papers (WSD, inverse sqrt) in float64.  Every new schedule runs
under jax.jit and jax.vmap over its hyperparameters, and is finite and >= 0 at every
int32 step (a grid through 0 .. 2**31 - 1, traced or not).
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import schedule_checks
from hypothesis import given, settings
from hypothesis import strategies as st
from schedule_checks import RTOL, check_jit_vector_and_vmap, f32, rounded, values

from lrjax import schedules as S
from lrjax import strategies as St

SETTINGS = settings(max_examples=25, deadline=None)
# Where a reference value is exactly 0 (a relative tolerance cannot hold there).
assert_matches = functools.partial(schedule_checks.assert_matches, atol_where_zero=1e-12)


# -----------------------------------------------------------------------------------
# Reference values (PyTorch 2.13.0, Keras 3.15.1), recorded with a throwaway script.
# -----------------------------------------------------------------------------------

# torch 2.13.0: MultiStepLR(SGD([p], lr=0.1), milestones=[3, 7, 7, 12], gamma=0.5)
MULTISTEP = [
    0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.0125, 0.0125, 0.0125, 0.0125, 0.0125, 0.00625,
    0.00625, 0.00625, 0.00625,
]

# torch 2.13.0: LinearLR(SGD([p], lr=0.1), start_factor=0.1, end_factor=1.0, total_iters=5)
LINEAR_UP = [
    0.010000000000000002, 0.028000000000000004, 0.046000000000000006, 0.064, 0.082, 0.1,
    0.1, 0.1, 0.1,
]

# torch 2.13.0: LinearLR(SGD([p], lr=0.05), start_factor=1.0, end_factor=0.2, total_iters=7)
LINEAR_DOWN = [
    0.05, 0.04428571428571429, 0.038571428571428576, 0.03285714285714286,
    0.02714285714285715, 0.021428571428571432, 0.01571428571428572, 0.01, 0.01, 0.01,
]

# torch 2.13.0: ConstantLR(SGD([p], lr=0.1), factor=0.25, total_iters=4)
CONSTANT = [
    0.025, 0.025, 0.025, 0.025, 0.1, 0.1, 0.1,
]

# torch 2.13.0: LambdaLR(SGD([p], lr=0.1), lambda e: 1.0 / (1.0 + 0.5 * e))
LAMBDA = [
    0.1, 0.06666666666666667, 0.05, 0.04000000000000001, 0.03333333333333333,
    0.02857142857142857, 0.025, 0.022222222222222223,
]

# torch 2.13.0: LambdaLR(SGD([p], lr=0.1), lambda e: 0.5 if e < 5 else 0.1)
LAMBDA_BRANCH = [
    0.05, 0.05, 0.05, 0.05, 0.05, 0.010000000000000002, 0.010000000000000002,
    0.010000000000000002,
]

# torch 2.13.0: MultiplicativeLR(SGD([p], lr=0.1), lambda e: 0.9 if e % 3 else 1.1)
MULTIPLICATIVE = [
    0.1, 0.09000000000000001, 0.08100000000000002, 0.08910000000000003,
    0.08019000000000003, 0.07217100000000003, 0.07938810000000003, 0.07144929000000003,
    0.06430436100000003, 0.07073479710000004, 0.06366131739000004, 0.05729518565100004,
]

# torch 2.13.0: ExponentialLR(SGD([p], lr=0.01), gamma=1.2)
EXPONENTIAL_GROWTH = [
    0.01, 0.012, 0.0144, 0.01728, 0.020736, 0.0248832, 0.02985984, 0.035831808,
    0.0429981696, 0.05159780351999999, 0.06191736422399999, 0.07430083706879999,
    0.08916100448255998, 0.10699320537907198, 0.12839184645488635, 0.15407021574586363,
    0.18488425889503635, 0.2218611106740436, 0.2662333328088523, 0.31947999937062277,
    0.3833759992447473, 0.46005119909369674, 0.5520614389124361, 0.6624737266949233,
    0.794968472033908, 0.9539621664406895, 1.1447545997288273, 1.3737055196745926,
    1.6484466236095112, 1.9781359483314134,
]

# torch 2.13.0: ExponentialLR(SGD([p], lr=0.1), gamma=0.9)
EXPONENTIAL = [
    0.1, 0.09000000000000001, 0.08100000000000002, 0.07290000000000002,
    0.06561000000000002, 0.05904900000000002, 0.05314410000000002, 0.04782969000000002,
]

# torch 2.13.0: StepLR(SGD([p], lr=0.1), step_size=3, gamma=0.5)
STEP = [
    0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025,
]

# torch 2.13.0: PolynomialLR(SGD([p], lr=0.1), total_iters=8, power=1.5)
POLYNOMIAL = [
    0.1, 0.08184875533567998, 0.0649519052838329, 0.04941058844013094, 0.03535533905932739,
    0.022963966338592302, 0.012500000000000004, 0.004419417382415924, 0.0, 0.0, 0.0,
]

# torch 2.13.0: CosineAnnealingLR(SGD([p], lr=0.1), T_max=10, eta_min=0.001), past T_max
COSINE_PAST_TMAX = [
    0.1, 0.09757729755661011, 0.0905463412215599, 0.07959536998847742, 0.0657963412215599,
    0.0505, 0.03520365877844011, 0.02140463001152259, 0.010453658778440109,
    0.0034227024433899004, 0.001, 0.0034227024433899004, 0.01045365877844014,
    0.02140463001152267, 0.035203658778440255, 0.05050000000000022, 0.06579634122156018,
    0.07959536998847777, 0.09054634122156031, 0.09757729755661054, 0.10000000000000045,
    0.09757729755661054, 0.09054634122156033, 0.07959536998847778, 0.0657963412215602,
    0.050500000000000225, 0.03520365877844027, 0.021404630011522683, 0.010453658778440154,
    0.003422702443389916, 0.001, 0.0034227024433899004, 0.010453658778440112,
    0.021404630011522607, 0.03520365877844015, 0.050500000000000086, 0.06579634122156003,
    0.07959536998847759, 0.09054634122156009, 0.09757729755661032, 0.10000000000000024,
    0.09757729755661038, 0.09054634122156012, 0.07959536998847763, 0.06579634122156017,
]

# torch 2.13.0: CosineAnnealingWarmRestarts(SGD([p], lr=0.1), T_0=3, T_mult=2, eta_min=0.01)
WARM_RESTARTS = [
    0.1, 0.0775, 0.032500000000000015, 0.1, 0.09397114317029975, 0.0775,
    0.05500000000000001, 0.032500000000000015, 0.01602885682970026, 0.1,
    0.09846666218300808, 0.09397114317029975,
]

# torch 2.13.0: CyclicLR(SGD([p], lr=0.5), base_lr=0.001, max_lr=0.006, step_size_up=3,
#   step_size_down=2, mode='triangular2', cycle_momentum=False)
CYCLIC = [
    0.001, 0.002666666666666666, 0.004333333333333333, 0.005999999999999999,
    0.0034999999999999996, 0.001, 0.0018333333333333342, 0.002666666666666666,
    0.0034999999999999996, 0.002250000000000001, 0.001, 0.0014166666666666672,
]

# torch 2.13.0: CyclicLR(SGD([p], lr=0.001), base_lr=0.001, max_lr=0.006, step_size_up=5,
#   mode='exp_range', gamma=1.05, cycle_momentum=False)
CYCLIC_GROWTH = [
    0.001, 0.002050000000000001, 0.0032049999999999995, 0.004472875000000001, 0.005862025,
    0.007381407812500002, 0.006360382562500001, 0.0052213012679687525,
    0.003954910887578125, 0.0025513282159785175, 0.001, 0.0027103393581163157,
    0.004591712652044264, 0.006656947426969707, 0.008919726397757594, 0.011394640897056843,
    0.009731498353527747, 0.007876054953403098, 0.005813238467382176, 0.003526950195375643,
    0.001, 0.0037859625904016463, 0.006850521439843457, 0.010214571267753433,
    0.01390039977485481, 0.017931774704496944, 0.015222690751777429, 0.01220036896702472,
    0.008840258276917316, 0.005116135595381592, 0.001, 0.005538039493908185,
    0.010529882937207233, 0.01600956562610137, 0.022013391876541947, 0.028580076837961283,
    0.0241672645438875, 0.01924422082831138, 0.013770954579817984, 0.007704751154404413,
]

# torch 2.13.0: OneCycleLR(SGD([p], lr=0.5), max_lr=0.1, epochs=2, steps_per_epoch=6,
#   anneal_strategy='linear', three_phase=True, cycle_momentum=False)
ONECYCLE = [
    0.004, 0.04092307692307694, 0.07784615384615387, 0.08523076923076922,
    0.048307692307692295, 0.011384615384615368, 0.0034483310344827585,
    0.0027587448275862066, 0.002069158620689655, 0.0013795724137931034,
    0.000689986206896552, 4.0000000000022656e-07,
]

# torch 2.13.0: SequentialLR(o, [LinearLR(o, start_factor=0.1, total_iters=5),
#   CosineAnnealingLR(o, T_max=25)], milestones=[5]), o = SGD([p], lr=0.1)
SEQUENTIAL = [
    0.010000000000000002, 0.028000000000000004, 0.046000000000000006, 0.064, 0.082, 0.1,
    0.0996057350657239, 0.09842915805643156, 0.09648882429441258, 0.09381533400219319,
    0.0904508497187474, 0.0864484313710706, 0.0818711994874345, 0.07679133974894983,
    0.07128896457825364, 0.06545084971874737, 0.05936906572928624, 0.05313952597646568,
    0.04686047402353434, 0.04063093427071378, 0.03454915028125265, 0.02871103542174637,
    0.02320866025105016, 0.018128800512565515, 0.013551568628929436, 0.009549150281252635,
    0.006184665997806822, 0.003511175705587433, 0.001570841943568452,
    0.00039426493427611184, 0.0, 0.0003942649342761062, 0.0015708419435684407,
    0.003511175705587427, 0.0061846659978068265,
]

# torch 2.13.0: SequentialLR(o, [ConstantLR(o, factor=0.5, total_iters=3),
#   ExponentialLR(o, gamma=0.9), StepLR(o, step_size=4, gamma=0.5)], milestones=[3, 10]),
#   o = SGD([p], lr=0.1)
SEQUENTIAL3 = [
    0.05, 0.05, 0.05, 0.1, 0.09000000000000001, 0.08100000000000002, 0.07290000000000002,
    0.06561000000000002, 0.05904900000000002, 0.05314410000000002, 0.1, 0.1, 0.1, 0.1,
    0.05, 0.05, 0.05, 0.05, 0.025, 0.025,
]

# torch 2.13.0: ChainedScheduler([ConstantLR(o, factor=0.1, total_iters=2),
#   ExponentialLR(o, gamma=0.9)]), o = SGD([p], lr=1.0)
CHAINED = [
    0.1, 0.09000000000000001, 0.8100000000000002, 0.7290000000000002, 0.6561000000000002,
    0.5904900000000002, 0.5314410000000002, 0.47829690000000014, 0.43046721000000016,
    0.38742048900000015,
]

# torch 2.13.0: ChainedScheduler([LinearLR(o, start_factor=0.5, total_iters=4),
#   MultiStepLR(o, milestones=[3, 6], gamma=0.5), PolynomialLR(o, total_iters=12, power=2.0)]),
#   o = SGD([p], lr=0.2)
CHAINED3 = [
    0.1, 0.10503472222222221, 0.10416666666666666, 0.04921874999999999,
    0.04444444444444444, 0.03402777777777776, 0.012499999999999997, 0.008680555555555552,
    0.005555555555555556, 0.0031249999999999993, 0.001388888888888888,
    0.0003472222222222225, 0.0, 0.0, 0.0,
]

# torch 2.13.0: OneCycleLR(SGD([p], lr=0.1, momentum=0.9), max_lr=0.1, total_steps=20,
#   base_momentum=0.85, max_momentum=0.95): param_groups[0]['momentum']
ONECYCLE_MOMENTUM_COS = [
    0.95, 0.9404508497187474, 0.9154508497187474, 0.8845491502812526, 0.8595491502812526,
    0.85, 0.8512536043909088, 0.854951556604879, 0.8609084258765984, 0.8688255099070633,
    0.878305813044122, 0.8888739533021842, 0.8999999999999999, 0.9111260466978157,
    0.9216941869558779, 0.9311744900929366, 0.9390915741234015, 0.945048443395121,
    0.9487463956090911, 0.95,
]

# torch 2.13.0: OneCycleLR(SGD([p], lr=0.1, momentum=0.9), max_lr=0.1, total_steps=20,
#   anneal_strategy='linear', three_phase=True, base_momentum=0.8, max_momentum=0.9): momentum
ONECYCLE_MOMENTUM_LINEAR_THREE = [
    0.9, 0.88, 0.86, 0.8400000000000001, 0.8200000000000001, 0.8, 0.8200000000000001,
    0.8400000000000001, 0.86, 0.88, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9,
]

# torch 2.13.0: CyclicLR(SGD([p], lr=0.1, momentum=0.9), base_lr=0.001, max_lr=0.006,
#   step_size_up=4, step_size_down=2, base_momentum=0.8, max_momentum=0.9): momentum
CYCLIC_MOMENTUM = [
    0.9, 0.875, 0.8500000000000001, 0.8250000000000001, 0.8, 0.8500000000000001, 0.9,
    0.875, 0.8500000000000001, 0.8250000000000001, 0.8000000000000002, 0.85, 0.9, 0.875,
    0.85, 0.8250000000000001, 0.8, 0.8500000000000001, 0.9, 0.8750000000000001,
]

# torch 2.13.0: CyclicLR(SGD([p], lr=0.1, momentum=0.9), base_lr=0.001, max_lr=0.006,
#   step_size_up=3, mode='triangular2', base_momentum=0.85, max_momentum=0.95): momentum
CYCLIC_MOMENTUM_TRI2 = [
    0.95, 0.9166666666666666, 0.8833333333333333, 0.85, 0.8833333333333333,
    0.9166666666666666, 0.95, 0.9333333333333332, 0.9166666666666666, 0.8999999999999999,
    0.9166666666666666, 0.9333333333333332, 0.95, 0.9416666666666667, 0.9333333333333332,
    0.9249999999999999, 0.9333333333333332, 0.9416666666666667, 0.95, 0.9458333333333333,
]

# the validation losses fed to ReduceLROnPlateau(...).step(loss), one per epoch
LOSSES = [
    1.0, 0.9, 0.9, 0.95, 0.91, 0.8999, 0.7, 0.71, 0.72, 0.73, 0.74, 0.75, 0.6, 0.6, 0.6,
    0.6, 0.6, 0.6,
]

# torch 2.13.0: ReduceLROnPlateau(SGD([p], lr=0.1), factor=0.5, patience=2) on LOSSES
PLATEAU_REL = [
    0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025, 0.025,
    0.025, 0.0125, 0.0125, 0.0125,
]

# torch 2.13.0: ReduceLROnPlateau(SGD([p], lr=0.1), factor=0.5, patience=1, threshold=0.05,
#   threshold_mode='abs', cooldown=2) on LOSSES
PLATEAU_ABS_COOLDOWN = [
    0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025, 0.025, 0.025,
    0.0125, 0.0125, 0.0125, 0.0125,
]

# accuracies for mode='max'
ACC = [
    0.5, 0.6, 0.6, 0.61, 0.7, 0.69, 0.7, 0.705, 0.71, 0.9, 0.9, 0.9, 0.9,
]

# torch 2.13.0: ReduceLROnPlateau(SGD([p], lr=0.1), mode='max', factor=0.2, patience=1,
#   threshold=0.01) on ACC
PLATEAU_MAX_REL = [
    0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.020000000000000004, 0.020000000000000004,
    0.020000000000000004, 0.020000000000000004, 0.020000000000000004, 0.004000000000000001,
    0.004000000000000001,
]

# torch 2.13.0: ReduceLROnPlateau(SGD([p], lr=0.1), mode='max', factor=0.2, patience=0,
#   threshold=0.05, threshold_mode='abs') on ACC
PLATEAU_MAX_ABS = [
    0.1, 0.1, 0.020000000000000004, 0.004000000000000001, 0.004000000000000001,
    0.0008000000000000003, 0.00016000000000000007, 3.200000000000001e-05,
    6.400000000000003e-06, 6.400000000000003e-06, 1.2800000000000007e-06,
    2.560000000000001e-07, 5.120000000000003e-08,
]

# torch 2.13.0: ReduceLROnPlateau(SGD([p], lr=1.0), factor=0.1, patience=0, min_lr=0.005)
#   on [1.0] * 8
PLATEAU_MIN_LR = [
    1.0, 0.1, 0.010000000000000002, 0.005, 0.005, 0.005, 0.005, 0.005,
]

# torch 2.13.0: ReduceLROnPlateau(SGD([p], lr=0.05), factor=0.5, patience=0, eps=0.01) on [1.0] * 8
PLATEAU_EPS = [
    0.05, 0.025, 0.0125, 0.0125, 0.0125, 0.0125, 0.0125, 0.0125,
]

# negative losses (rel threshold with a negative best)
NEG = [
    -1.0, -1.5, -1.5, -1.6, -1.6, -1.6, -2.0, -2.0,
]

# torch 2.13.0: ReduceLROnPlateau(SGD([p], lr=0.1), factor=0.5, patience=1, threshold=0.1) on NEG
PLATEAU_NEGATIVE_REL = [
    0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1,
]

# keras 3.15.1: PiecewiseConstantDecay([3, 6], [1.0, 0.5, 0.1])
KERAS_PIECEWISE = [
    1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.10000000149011612, 0.10000000149011612,
]

# keras 3.15.1: CosineDecay(0.1, 10, alpha=0.1)
KERAS_COSINE = [
    0.10000000149011612, 0.09779754281044006, 0.09140576422214508, 0.08145033568143845,
    0.06890576332807541, 0.05499999597668648, 0.04109422490000725, 0.028549665585160255,
    0.018594233319163322, 0.012202458456158638, 0.010000000707805157, 0.010000000707805157,
    0.010000000707805157, 0.010000000707805157,
]

# keras 3.15.1: CosineDecay(0.0, 10, alpha=0.1, warmup_target=0.2, warmup_steps=5)
KERAS_COSINE_WARMUP = [
    0.0, 0.04000000283122063, 0.08000000566244125, 0.12000000476837158, 0.1600000113248825,
    0.20000000298023224, 0.19559507071971893, 0.18281152844429016, 0.1629006713628769,
    0.13781152665615082, 0.10999999195337296, 0.0821884498000145, 0.05709933117032051,
    0.037188466638326645, 0.024404918774962425, 0.020000001415610313, 0.020000001415610313,
    0.020000001415610313,
]

# keras 3.15.1: CosineDecayRestarts(0.1, 4, t_mul=2.0, m_mul=0.5, alpha=0.1)
KERAS_RESTARTS = [
    0.10000000149011612, 0.08681981265544891, 0.05499999597668648, 0.023180196061730385,
    0.055000003427267075, 0.05328729376196861, 0.04840990528464317, 0.04111037775874138,
    0.032499998807907104, 0.02388962171971798, 0.016590097919106483, 0.01171270851045847,
    0.032499998807907104, 0.03228383511304855, 0.031643643975257874, 0.030604032799601555,
    0.029204953461885452, 0.02750016562640667, 0.025555187836289406, 0.02344476617872715,
    0.021250000223517418, 0.019055234268307686, 0.01694481074810028, 0.014999833889305592,
    0.013295048847794533, 0.011895966716110706, 0.010856354609131813, 0.010216165333986282,
    0.021250000223517418, 0.0212229136377573,
]

# keras 3.15.1: CosineDecayRestarts(0.1, 5, t_mul=1.0, m_mul=0.8)
KERAS_RESTARTS_TMUL1 = [
    0.10000000149011612, 0.09045084565877914, 0.06545084714889526, 0.03454914316534996,
    0.009549147449433804, 0.08000000566244125, 0.07236067950725555, 0.05236068367958069,
    0.027639314532279968, 0.0076393247582018375, 0.06400000303983688, 0.05788854509592056,
    0.041888535022735596, 0.02211146615445614, 0.006111460272222757, 0.05120000243186951,
]

# keras 3.15.1: ExponentialDecay(0.1, 10, 0.5)
KERAS_EXPONENTIAL = [
    0.10000000149011612, 0.09330330044031143, 0.08705505728721619, 0.08122523874044418,
    0.07578583061695099, 0.0707106813788414, 0.06597539037466049, 0.06155722215771675,
    0.057434916496276855, 0.05358867719769478, 0.05000000074505806, 0.046651650220155716,
]

# keras 3.15.1: ExponentialDecay(0.1, 4, 0.5, staircase=True)
KERAS_EXPONENTIAL_STAIR = [
    0.10000000149011612, 0.10000000149011612, 0.10000000149011612, 0.10000000149011612,
    0.05000000074505806, 0.05000000074505806, 0.05000000074505806, 0.05000000074505806,
    0.02500000037252903, 0.02500000037252903, 0.02500000037252903, 0.02500000037252903,
]

# keras 3.15.1: InverseTimeDecay(0.1, 10, 0.5)
KERAS_INVERSE_TIME = [
    0.10000000149011612, 0.0952381044626236, 0.09090909361839294, 0.08695652335882187,
    0.0833333283662796, 0.07999999821186066, 0.07692307978868484, 0.07407407462596893,
    0.0714285746216774, 0.06896551698446274, 0.06666667014360428, 0.06451613456010818,
]

# keras 3.15.1: InverseTimeDecay(0.1, 4, 0.5, staircase=True)
KERAS_INVERSE_TIME_STAIR = [
    0.10000000149011612, 0.10000000149011612, 0.10000000149011612, 0.10000000149011612,
    0.06666667014360428, 0.06666667014360428, 0.06666667014360428, 0.06666667014360428,
    0.05000000074505806, 0.05000000074505806, 0.05000000074505806, 0.05000000074505806,
]

# keras 3.15.1: PolynomialDecay(0.1, 10, 0.001, power=2.0)
KERAS_POLYNOMIAL = [
    0.10000000149011612, 0.08118999749422073, 0.06436000764369965, 0.04950999468564987,
    0.036639999598264694, 0.025750000029802322, 0.016839997842907906, 0.00991000048816204,
    0.004959999583661556, 0.0019900004845112562, 0.0010000000474974513,
    0.0010000000474974513, 0.0010000000474974513, 0.0010000000474974513,
]

# keras 3.15.1: PolynomialDecay(0.1, 5, 0.01, power=0.5, cycle=True)
KERAS_POLYNOMIAL_CYCLE = [
    0.10000000149011612, 0.09049844741821289, 0.07971370220184326, 0.06692100316286087,
    0.05024922639131546, 0.009999999776482582, 0.06692100316286087, 0.059295035898685455,
    0.05024922639131546, 0.03846050053834915, 0.009999999776482582, 0.05647580325603485,
    0.05024922639131546, 0.042863354086875916,
]

# torch 2.13.0: SequentialLR(o, [ExponentialLR(o, gamma=0.8), CosineAnnealingWarmRestarts(o, T_0=4,
#   T_mult=2, eta_min=0.01)], milestones=[5]), o = SGD([p], lr=0.1)
SEQUENTIAL_RESTARTS = [
    0.1, 0.08000000000000002, 0.06400000000000002, 0.051200000000000016, 0.04096000000000002,
    0.1, 0.08681980515339464, 0.05500000000000001, 0.023180194846605363, 0.1,
    0.0965745789630079, 0.08681980515339464, 0.07222075445642905, 0.05500000000000001,
    0.03777924554357097, 0.023180194846605363, 0.013425421036992097, 0.1, 0.09913533761814537,
    0.0965745789630079, 0.09241613255361454, 0.08681980515339464, 0.0800006604858821,
    0.07222075445642905, 0.06377906449072579,
]

# torch 2.13.0: SequentialLR(o, [ExponentialLR(o, gamma=0.8), CyclicLR(o, base_lr=0.01, max_lr=0.05,
#   step_size_up=3, cycle_momentum=False)], milestones=[5]), o = SGD([p], lr=0.1)
SEQUENTIAL_CYCLIC = [
    0.1, 0.08000000000000002, 0.06400000000000002, 0.051200000000000016, 0.04096000000000002,
    0.01, 0.023333333333333338, 0.03666666666666666, 0.05, 0.03666666666666668,
    0.023333333333333324, 0.01, 0.02333333333333336, 0.036666666666666646, 0.05,
    0.036666666666666646, 0.02333333333333336, 0.01, 0.023333333333333324, 0.03666666666666668,
]


# -----------------------------------------------------------------------------------
# PyTorch: from_torch and the new functions against the recorded values
# -----------------------------------------------------------------------------------

T = S.from_torch
TORCH_CASES = {
    "MULTISTEP": lambda: T("MultiStepLR", lr=0.1, milestones=[3, 7, 7, 12], gamma=0.5),
    "LINEAR_UP": lambda: T("LinearLR", lr=0.1, start_factor=0.1, end_factor=1.0,
                           total_iters=5),
    "LINEAR_DOWN": lambda: T("LinearLR", lr=0.05, start_factor=1.0, end_factor=0.2,
                             total_iters=7),
    "CONSTANT": lambda: T("ConstantLR", lr=0.1, factor=0.25, total_iters=4),
    "LAMBDA": lambda: T("LambdaLR", lr=0.1, lr_lambda=lambda e: 1.0 / (1.0 + 0.5 * e)),
    "LAMBDA_BRANCH": lambda: T("LambdaLR", lr=0.1, lr_lambda=lambda e: 0.5 if e < 5 else 0.1,
                               num_steps=20),
    "MULTIPLICATIVE": lambda: T("MultiplicativeLR", lr=0.1,
                                lr_lambda=lambda e: 0.9 if e % 3 else 1.1, num_steps=30),
    "EXPONENTIAL_GROWTH": lambda: T("ExponentialLR", lr=0.01, gamma=1.2, lr_cap=1e3),
    "EXPONENTIAL": lambda: T("ExponentialLR", lr=0.1, gamma=0.9),
    "STEP": lambda: T("StepLR", lr=0.1, step_size=3, gamma=0.5),
    "POLYNOMIAL": lambda: T("PolynomialLR", lr=0.1, total_iters=8, power=1.5),
    "COSINE_PAST_TMAX": lambda: T("CosineAnnealingLR", lr=0.1, T_max=10, eta_min=0.001),
    "WARM_RESTARTS": lambda: T("CosineAnnealingWarmRestarts", lr=0.1, T_0=3, T_mult=2,
                               eta_min=0.01),
    "CYCLIC": lambda: T("CyclicLR", lr=0.5, base_lr=0.001, max_lr=0.006, step_size_up=3,
                        step_size_down=2, mode="triangular2", cycle_momentum=False),
    "CYCLIC_GROWTH": lambda: T("CyclicLR", lr=0.001, base_lr=0.001, max_lr=0.006,
                               step_size_up=5, mode="exp_range", gamma=1.05,
                               cycle_momentum=False, lr_cap=1.0),
    "ONECYCLE": lambda: T("OneCycleLR", lr=0.5, max_lr=0.1, epochs=2, steps_per_epoch=6,
                          anneal_strategy="linear", three_phase=True, cycle_momentum=False),
    "SEQUENTIAL": lambda: T("SequentialLR", lr=0.1, milestones=[5], schedulers=[
        ("LinearLR", {"start_factor": 0.1, "total_iters": 5}),
        ("CosineAnnealingLR", {"T_max": 25})]),
    "SEQUENTIAL3": lambda: T("SequentialLR", lr=0.1, milestones=[3, 10], schedulers=[
        ("ConstantLR", dict(factor=0.5, total_iters=3)), ("ExponentialLR", dict(gamma=0.9)),
        ("StepLR", dict(step_size=4, gamma=0.5))]),
    "SEQUENTIAL_RESTARTS": lambda: T("SequentialLR", lr=0.1, milestones=[5], schedulers=[
        ("ExponentialLR", {"gamma": 0.8}),
        ("CosineAnnealingWarmRestarts", dict(T_0=4, T_mult=2, eta_min=0.01))]),
    "SEQUENTIAL_CYCLIC": lambda: T("SequentialLR", lr=0.1, milestones=[5], schedulers=[
        ("ExponentialLR", {"gamma": 0.8}),
        ("CyclicLR", dict(base_lr=0.01, max_lr=0.05, step_size_up=3, cycle_momentum=False))]),
    "CHAINED": lambda: T("ChainedScheduler", lr=1.0, schedulers=[
        ("ConstantLR", dict(factor=0.1, total_iters=2)), ("ExponentialLR", dict(gamma=0.9))]),
    "CHAINED3": lambda: T("ChainedScheduler", lr=0.2, schedulers=[
        ("LinearLR", dict(start_factor=0.5, total_iters=4)),
        ("MultiStepLR", dict(milestones=[3, 6], gamma=0.5)),
        ("PolynomialLR", dict(total_iters=12, power=2.0))]),
}


@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_from_torch_matches_pytorch(name):
  assert_matches(TORCH_CASES[name](), globals()[name])


# the names of torch.optim.lr_scheduler.__all__ (2.13.0) that are schedulers
TORCH_SCHEDULER_NAMES = [
    "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
    "ExponentialLR", "SequentialLR", "CosineAnnealingLR", "ChainedScheduler",
    "ReduceLROnPlateau", "CyclicLR", "CosineAnnealingWarmRestarts", "OneCycleLR",
    "PolynomialLR",
]


def test_every_torch_scheduler_is_covered_and_tested():
  step_functions = set(TORCH_SCHEDULER_NAMES) - {"ReduceLROnPlateau"}
  assert set(S.porting.TORCH_SCHEDULES) == step_functions
  assert set(St.torch_plateau.TORCH_STRATEGIES) == {"ReduceLROnPlateau"}
  tested = {c for case in TORCH_CASES.values() for c in case.__code__.co_consts
            if c in step_functions}
  assert step_functions <= tested


def test_direct_functions_match_pytorch():
  assert_matches(S.multi_step_lr(0.1, [3, 7, 7, 12], 0.5), MULTISTEP)
  assert_matches(S.linear_lr(0.1, 0.1, 1.0, 5), LINEAR_UP)
  assert_matches(S.constant_lr(0.1, 0.25, 4), CONSTANT)
  assert_matches(S.lambda_lr(0.1, lambda t: 1.0 / (1.0 + 0.5 * t)), LAMBDA)
  assert_matches(S.exponential_lr(0.01, 1.2, lr_cap=1e3), EXPONENTIAL_GROWTH)
  assert_matches(S.cosine_annealing(0.1, 10, 0.001, periodic=True), COSINE_PAST_TMAX)
  assert_matches(S.exp_range(0.001, 0.006, 5, 1.05, lr_cap=1.0), CYCLIC_GROWTH)
  assert_matches(S.exponential_decay(0.01, -math.log(1.2), lr_cap=1e3), EXPONENTIAL_GROWTH)
  assert_matches(S.join([S.linear_lr(0.1, 0.1, 1.0, 5), S.cosine_annealing(0.1, 25,
                                                                          periodic=True)],
                        [5]), SEQUENTIAL)
  assert_matches(S.chained(1.0, [S.constant_lr(1.0, 0.1, 2), S.exponential_lr(1.0, 0.9)]),
                 CHAINED)


def test_cosine_default_still_holds_min_lr_past_total():
  held = values(S.cosine_annealing(0.1, 10, 0.001), 45)
  np.testing.assert_allclose(held[:11], COSINE_PAST_TMAX[:11], rtol=RTOL)
  np.testing.assert_allclose(held[11:], f32(0.001), rtol=RTOL)


def test_growth_is_capped_and_stays_at_the_cap():
  cap = 0.1
  got = values(S.exponential_lr(0.01, 1.2, lr_cap=cap), 30)
  ref = np.minimum(np.asarray(EXPONENTIAL_GROWTH), cap)
  np.testing.assert_allclose(got, ref, rtol=RTOL)
  assert got[-1] == np.float32(cap)
  got = values(S.exp_range(0.001, 0.006, 5, 1.05, lr_cap=0.008), 40)
  np.testing.assert_allclose(got, np.minimum(CYCLIC_GROWTH, 0.008), rtol=RTOL)


def test_momentum_schedules_match_pytorch():
  assert_matches(S.one_cycle_momentum(20, base_momentum=0.85, max_momentum=0.95),
                 ONECYCLE_MOMENTUM_COS)
  assert_matches(S.one_cycle_momentum(20, anneal_strategy="linear", three_phase=True,
                                      base_momentum=0.8, max_momentum=0.9),
                 ONECYCLE_MOMENTUM_LINEAR_THREE)
  assert_matches(S.cyclical_momentum(4, step_size_down=2, base_momentum=0.8,
                                     max_momentum=0.9), CYCLIC_MOMENTUM)
  assert_matches(S.cyclical_momentum(3, mode="triangular2", base_momentum=0.85,
                                     max_momentum=0.95), CYCLIC_MOMENTUM_TRI2)


def test_momentum_and_rate_through_inject_hyperparams():
  lr = S.one_cycle_torch(0.1, 20)
  momentum = S.one_cycle_momentum(20)
  opt = optax.inject_hyperparams(optax.sgd)(learning_rate=lr, momentum=momentum)
  params = jnp.zeros(2)
  state = opt.init(params)
  update = jax.jit(opt.update)
  trace = np.zeros(2)
  for t in range(20):
    g = np.full(2, 1.0 + t)  # PyTorch SGD: buf = m buf + g; p -= lr buf
    updates, state = update(jnp.asarray(g, jnp.float32), state, params)
    np.testing.assert_allclose(float(state.hyperparams["momentum"]),
                               ONECYCLE_MOMENTUM_COS[t], rtol=RTOL)
    np.testing.assert_allclose(float(state.hyperparams["learning_rate"]), float(lr(t)),
                               rtol=RTOL)
    trace = (ONECYCLE_MOMENTUM_COS[t] * trace + g) if t else g
    np.testing.assert_allclose(np.asarray(updates), -float(lr(t)) * trace, rtol=1e-5)


def test_per_epoch_steps_a_torch_scheduler_once_per_epoch():
  sched = S.per_epoch(T("MultiStepLR", lr=0.1, milestones=[3, 7, 7, 12], gamma=0.5), 10)
  got = values(sched, 160)
  np.testing.assert_allclose(got, np.repeat(MULTISTEP, 10), rtol=RTOL)


# -----------------------------------------------------------------------------------
# from_torch / from_keras errors
# -----------------------------------------------------------------------------------

@pytest.mark.parametrize("call,match", [
    (lambda: T("CosineAnnealing", lr=0.1, T_max=3), r"not supported.*'CosineAnnealingLR'"),
    (lambda: T("StepLR", lr=0.1, step_size=3, gama=0.5),
     r"unsupported argument\(s\) \['gama'\].*'gamma'"),
    (lambda: T("StepLR", lr=0.1), r"missing required argument\(s\) \['step_size'\]"),
    (lambda: T("ReduceLROnPlateau", lr=0.1), r"lrjax.strategies.from_torch"),
    (lambda: T("ExponentialLR", lr=0.1, gamma=1.1), r"`gamma`.*`lr_cap`"),
    (lambda: S.exp_range(0.001, 0.01, 5, gamma=1.1), r"`gamma`.*`lr_cap`"),
    (lambda: T("CyclicLR", lr=0.1, base_lr=0.01, max_lr=0.1, mode="exp_range", gamma=1.1),
     r"`gamma`.*`lr_cap`"),
    (lambda: S.exponential_decay(0.1, -0.1), r"`k`.*`lr_cap`"),
    (lambda: T("MultiplicativeLR", lr=0.1, lr_lambda=lambda e: 0.9),
     r"missing required argument\(s\) \['num_steps'\]"),
    (lambda: T("CyclicLR", lr=0.1, base_lr=0.01, max_lr=0.1, scale_fn=lambda x: 1.0),
     r"scale_fn"),
    (lambda: T("ChainedScheduler", lr=0.1, schedulers=[("CosineAnnealingLR", {"T_max": 3})]),
     r"'CosineAnnealingLR' is not supported.*'ExponentialLR'"),
    (lambda: T("SequentialLR", lr=0.1, schedulers=[("ConstantLR", {})], milestones=[2]),
     r"`milestones` must have"),
    (lambda: T("SequentialLR", lr=0.1, schedulers=[("ConstantLR", {}), "StepLR"],
               milestones=[2]), r"`schedulers\[1\]` must be a \(name, kwargs\) pair"),
    (lambda: T("SequentialLR", lr=0.1, milestones=[2], schedulers=[
        ("ConstantLR", {}), ("MultiplicativeLR", {"lr_lambda": abs, "num_steps": 3})]),
     r"only supported as the first part"),
    (lambda: T("OneCycleLR", lr=0.1, max_lr=0.1), r"`total_steps`"),
    (lambda: T("SequentialLR", lr=0.1, milestones=[3], schedulers=[
        ("ConstantLR", {}), ("OneCycleLR", {"max_lr": 0.1, "total_steps": 10})]),
     r"'OneCycleLR' is not supported"),
    (lambda: T("StepLR", lr=0.0, step_size=3), r"`lr`"),
    (lambda: T("StepLR", lr=0.1, step_size=3, gamma=2.0), r"`gamma`"),
    (lambda: S.from_keras("CosineDecayy", initial_learning_rate=0.1),
     r"not supported.*'CosineDecayRestarts'"),
    (lambda: S.from_keras("CosineDecay", initial_learning_rate=0.1, decay_steps=3, beta=1),
     r"unsupported argument\(s\) \['beta'\].*'warmup_target'"),
    (lambda: St.from_torch("StepLR", lr=0.1), r"not an lrjax strategy.*ReduceLROnPlateau"),
    (lambda: St.from_torch("ReduceLROnPlateau", lr=0.1, verbose=True),
     r"unsupported argument\(s\) \['verbose'\].*'threshold_mode'"),
])
def test_porting_errors_name_what_is_supported(call, match):
  with pytest.raises(ValueError, match=match):
    call()


# -----------------------------------------------------------------------------------
# ReduceLROnPlateau: traces against PyTorch
# -----------------------------------------------------------------------------------

def plateau_trace(metrics, lr, **kwargs):
  tx = St.from_torch("ReduceLROnPlateau", lr=lr, **kwargs)
  state = tx.init(jnp.zeros(1))
  update = jax.jit(lambda s, m: tx.update(jnp.ones(1), s, valid_loss=m))
  out = []
  for m in metrics:
    updates, state = update(state, m)
    np.testing.assert_allclose(float(updates[0]), -float(state.lr), rtol=0)
    out.append(float(state.lr))
  return out


PLATEAU_CASES = {
    "PLATEAU_REL": (LOSSES, 0.1, dict(factor=0.5, patience=2)),
    "PLATEAU_ABS_COOLDOWN": (LOSSES, 0.1, dict(factor=0.5, patience=1, threshold=0.05,
                                               threshold_mode="abs", cooldown=2)),
    "PLATEAU_MAX_REL": (ACC, 0.1, dict(mode="max", factor=0.2, patience=1, threshold=0.01)),
    "PLATEAU_MAX_ABS": (ACC, 0.1, dict(mode="max", factor=0.2, patience=0, threshold=0.05,
                                       threshold_mode="abs")),
    "PLATEAU_MIN_LR": ([1.0] * 8, 1.0, dict(factor=0.1, patience=0, min_lr=0.005)),
    "PLATEAU_EPS": ([1.0] * 8, 0.05, dict(factor=0.5, patience=0, eps=0.01)),
    "PLATEAU_NEGATIVE_REL": (NEG, 0.1, dict(factor=0.5, patience=1, threshold=0.1)),
}


@pytest.mark.parametrize("name", sorted(PLATEAU_CASES))
def test_reduce_lr_on_plateau_matches_pytorch(name):
  metrics, lr, kwargs = PLATEAU_CASES[name]
  np.testing.assert_allclose(plateau_trace(metrics, lr, **kwargs), globals()[name], rtol=RTOL)


def test_plateau_differs_from_optax_rule_where_pytorch_does():
  # patience=2: PyTorch reduces after 3 bad epochs (num_bad_epochs > patience),
  # optax.contrib.reduce_on_plateau after 2: the point of a separate transformation.
  metrics = [1.0, 1.0, 1.0, 1.0]
  torch_like = plateau_trace(metrics, 0.1, factor=0.5, patience=2)
  assert torch_like == [f32(0.1)] * 3 + [f32(0.05)]
  tx = optax.contrib.reduce_on_plateau(factor=0.5, patience=2)
  state = tx.init(jnp.zeros(1))
  scales = []
  for m in metrics:
    _, state = tx.update(jnp.ones(1), state, value=m)
    scales.append(float(state.scale))
  assert scales[:3] == [1.0, 1.0, 0.5]


def test_plateau_vmaps_over_hyperparameters_and_runs_in_scan():
  factors = jnp.asarray([0.5, 0.1, 0.2])
  patiences = jnp.asarray([2, 1, 0])
  losses = jnp.asarray(LOSSES, jnp.float32)

  def run(factor, patience):
    tx = optax.chain(optax.scale_by_adam(), St.reduce_lr_on_plateau(
        0.1, factor=factor, patience=patience))
    params = jnp.zeros(3)

    def body(carry, loss):
      params, state = carry
      updates, state = tx.update(jnp.ones(3), state, params, valid_loss=loss)
      return (optax.apply_updates(params, updates), state), state[1].lr

    _, lrs = jax.lax.scan(body, (params, tx.init(params)), losses)
    return lrs

  got = np.asarray(jax.jit(jax.vmap(run))(factors, patiences))
  for i in range(3):
    ref = plateau_trace(LOSSES, 0.1, factor=float(factors[i]), patience=int(patiences[i]))
    np.testing.assert_allclose(got[i], ref, rtol=RTOL)
  np.testing.assert_allclose(got[0], PLATEAU_REL, rtol=RTOL)


def test_plateau_ignores_nonfinite_metrics_and_flags_them():
  clean = plateau_trace([1.0, 1.0, 1.0], 0.1, factor=0.5, patience=1)
  tx = St.reduce_lr_on_plateau(0.1, factor=0.5, patience=1)
  state = tx.init(jnp.zeros(1))
  got = []
  for m in [1.0, float("nan"), 1.0, float("inf"), 1.0]:
    _, state = tx.update(jnp.ones(1), state, valid_loss=m)
    got.append(float(state.lr))
  assert got[::2] == clean and got[1] == got[0] and got[3] == got[2]
  assert bool(state.nonfinite) and int(state.num_observations) == 3


def test_plateau_between_boundaries_keeps_its_state():
  tx = St.reduce_lr_on_plateau(0.1, factor=0.5, patience=0)
  state = tx.init(jnp.zeros(1))
  _, state = tx.update(jnp.ones(1), state, valid_loss=1.0)
  for kwargs in ({}, {"valid_loss": 5.0, "epoch_boundary": False},
                 {"valid_loss": 5.0, "epoch_boundary": jnp.asarray(False)}):
    _, new = tx.update(jnp.ones(1), state, **kwargs)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), new, state))


def test_plateau_state_is_donatable():
  tx = St.reduce_lr_on_plateau(0.1)
  state = tx.init(jnp.zeros(2))
  update = jax.jit(lambda s: tx.update(jnp.ones(2), s, valid_loss=1.0)[1], donate_argnums=0)
  state = update(state)
  assert int(state.num_observations) == 1


@pytest.mark.parametrize("kwargs,arg", [
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(learning_rate=0.1, factor=1.0), "factor"),
    (dict(learning_rate=0.1, patience=-1), "patience"),
    (dict(learning_rate=0.1, patience=1.5), "patience"),
    (dict(learning_rate=0.1, threshold=-1e-4), "threshold"),
    (dict(learning_rate=0.1, cooldown=-2), "cooldown"),
    (dict(learning_rate=0.1, min_lr=float("nan")), "min_lr"),
    (dict(learning_rate=0.1, eps=-1.0), "eps"),
    (dict(learning_rate=0.1, mode="minimum"), "mode"),
    (dict(learning_rate=0.1, threshold_mode="relative"), "threshold_mode"),
])
def test_plateau_bad_arguments_raise_naming_them(kwargs, arg):
  with pytest.raises(ValueError, match=f"`{arg}`"):
    St.reduce_lr_on_plateau(**kwargs)


# -----------------------------------------------------------------------------------
# Keras: the documentation's formulas (float64) and Keras' own float32 values
# -----------------------------------------------------------------------------------

def keras_cosine_ref(t, lr0, d, alpha, target=None, w=0):
  if target is None:
    t = min(t, d)
    return lr0 * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * t / d)) + alpha)
  t = min(t, d + w)
  if t < w:
    return (target - lr0) * t / w + lr0
  return target * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * (t - w) / d)) + alpha)


def keras_restarts_ref(t, lr0, t0, t_mul, m_mul, alpha):
  i, start, length = 0, 0.0, float(t0)  # walk the cycles exactly (no float log)
  while t >= start + length:
    start, length, i = start + length, length * t_mul, i + 1
  frac = (t - start) / length
  return lr0 * ((1 - alpha) * m_mul ** i * 0.5 * (1 + math.cos(math.pi * frac)) + alpha)


def keras_polynomial_ref(t, lr0, d, end, power, cycle):
  if cycle:
    d = d * (1 if t == 0 else math.ceil(t / d))
  else:
    t = min(t, d)
  return (lr0 - end) * (1 - t / d) ** power + end


K = S.from_keras
KERAS_CASES = {
    "KERAS_PIECEWISE": (K("PiecewiseConstantDecay", boundaries=[3, 6], values=[1.0, 0.5, 0.1]),
                        lambda t: 1.0 if t <= 3 else 0.5 if t <= 6 else 0.1),
    "KERAS_COSINE": (K("CosineDecay", initial_learning_rate=0.1, decay_steps=10, alpha=0.1),
                     lambda t: keras_cosine_ref(t, 0.1, 10, 0.1)),
    "KERAS_COSINE_WARMUP": (K("CosineDecay", initial_learning_rate=0.0, decay_steps=10,
                              alpha=0.1, warmup_target=0.2, warmup_steps=5, name="cd"),
                            lambda t: keras_cosine_ref(t, 0.0, 10, 0.1, 0.2, 5)),
    "KERAS_RESTARTS": (K("CosineDecayRestarts", initial_learning_rate=0.1,
                         first_decay_steps=4, t_mul=2.0, m_mul=0.5, alpha=0.1),
                       lambda t: keras_restarts_ref(t, 0.1, 4, 2.0, 0.5, 0.1)),
    "KERAS_RESTARTS_TMUL1": (K("CosineDecayRestarts", initial_learning_rate=0.1,
                               first_decay_steps=5, t_mul=1.0, m_mul=0.8),
                             lambda t: keras_restarts_ref(t, 0.1, 5, 1.0, 0.8, 0.0)),
    "KERAS_EXPONENTIAL": (K("ExponentialDecay", initial_learning_rate=0.1, decay_steps=10,
                            decay_rate=0.5), lambda t: 0.1 * 0.5 ** (t / 10)),
    "KERAS_EXPONENTIAL_STAIR": (K("ExponentialDecay", initial_learning_rate=0.1,
                                  decay_steps=4, decay_rate=0.5, staircase=True),
                                lambda t: 0.1 * 0.5 ** (t // 4)),
    "KERAS_INVERSE_TIME": (K("InverseTimeDecay", initial_learning_rate=0.1, decay_steps=10,
                             decay_rate=0.5), lambda t: 0.1 / (1 + 0.5 * t / 10)),
    "KERAS_INVERSE_TIME_STAIR": (K("InverseTimeDecay", initial_learning_rate=0.1,
                                   decay_steps=4, decay_rate=0.5, staircase=True),
                                 lambda t: 0.1 / (1 + 0.5 * (t // 4))),
    "KERAS_POLYNOMIAL": (K("PolynomialDecay", initial_learning_rate=0.1, decay_steps=10,
                           end_learning_rate=0.001, power=2.0),
                         lambda t: keras_polynomial_ref(t, 0.1, 10, 0.001, 2.0, False)),
    "KERAS_POLYNOMIAL_CYCLE": (K("PolynomialDecay", initial_learning_rate=0.1, decay_steps=5,
                                 end_learning_rate=0.01, power=0.5, cycle=True),
                               lambda t: keras_polynomial_ref(t, 0.1, 5, 0.01, 0.5, True)),
}


@pytest.mark.parametrize("name", sorted(KERAS_CASES))
def test_from_keras_matches_the_documented_formula_and_keras(name):
  schedule, formula = KERAS_CASES[name]
  keras_values = globals()[name]
  n = 60
  assert_matches(schedule, [formula(t) for t in range(n)])
  assert_matches(schedule, keras_values, rtol=1e-5)


def test_every_keras_schedule_is_covered():
  keras_names = {"CosineDecay", "CosineDecayRestarts", "ExponentialDecay",
                 "InverseTimeDecay", "PiecewiseConstantDecay", "PolynomialDecay"}
  assert set(S.porting.KERAS_SCHEDULES) == keras_names


def test_keras_restarts_long_run_and_fractional_t_mul():
  sched = S.keras_cosine_decay_restarts(0.1, 3, t_mul=3.0, m_mul=0.9, alpha=0.05)
  assert_matches(sched, [keras_restarts_ref(t, 0.1, 3, 3.0, 0.9, 0.05) for t in range(400)])
  # a fractional t_mul has float32 restart points (documented): 1e-5 relative
  sched = S.keras_cosine_decay_restarts(0.1, 4, t_mul=1.5, m_mul=1.0, alpha=0.1)
  assert_matches(sched, [keras_restarts_ref(t, 0.1, 4, 1.5, 1.0, 0.1) for t in range(300)],
                 rtol=1e-5)


def test_keras_exponential_growth_needs_and_obeys_a_cap():
  with pytest.raises(ValueError, match="`decay_rate`.*`lr_cap`"):
    S.keras_exponential_decay(0.1, 10, 2.0)
  for stair in (False, True):
    sched = S.keras_exponential_decay(0.1, 10, 2.0, staircase=stair, lr_cap=1.0)
    ref = [min(0.1 * 2.0 ** ((t // 10) if stair else t / 10), 1.0) for t in range(60)]
    assert_matches(sched, ref)


# -----------------------------------------------------------------------------------
# Today's practice: warm-up, WSD, inverse sqrt, join
# -----------------------------------------------------------------------------------

def test_warmup_kinds_match_their_formulas():
  base = S.cosine_annealing(0.1, 50, 0.001)
  peak = 0.1
  for kind, ramp in [
      ("linear", lambda t: 0.01 + (peak - 0.01) * t / 8),
      ("cosine", lambda t: 0.01 + (peak - 0.01) * 0.5 * (1 - math.cos(math.pi * t / 8))),
      ("exponential", lambda t: 0.01 * (peak / 0.01) ** (t / 8))]:
    sched = S.warmup(base, 8, init_lr=0.01, kind=kind)
    cos = [0.001 + 0.5 * (0.1 - 0.001) * (1 + math.cos(math.pi * min(t, 50) / 50))
           for t in range(80)]
    ref = [ramp(t) if t < 8 else cos[t - 8] for t in range(80)]
    assert_matches(sched, ref)
  assert_matches(S.warmup(base, 0), values(base, 30))


def test_warmup_in_front_of_an_optax_schedule_matches_join():
  inner = optax.exponential_decay(0.2, 10, 0.5)
  got = S.warmup(inner, 5)
  want = optax.join_schedules([optax.linear_schedule(0.0, 0.2, 5), inner], [5])
  np.testing.assert_allclose(values(got, 40),
                             np.asarray(jax.vmap(want)(jnp.arange(40)), np.float64),
                             rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("cooldown,shape", [
    ("linear", lambda p: 1 - p),
    ("cosine", lambda p: 0.5 * (1 + math.cos(math.pi * p))),
    ("1-sqrt", lambda p: 1 - math.sqrt(p)),
])
def test_warmup_stable_decay_matches_formula(cooldown, shape):
  w, s, d, peak, final, init = 10, 30, 20, 0.3, 0.003, 0.001
  sched = S.warmup_stable_decay(peak, w, s, d, init_lr=init, final_lr=final, cooldown=cooldown)

  def ref(t):
    if t < w:
      return init + (peak - init) * t / w
    if t < w + s:
      return peak
    p = min(t - w - s, d) / d
    return final + (peak - final) * shape(p)

  assert_matches(sched, [ref(t) for t in range(80)])


def test_inverse_sqrt_is_the_transformer_schedule():
  d_model, warm = 512, 4000
  sched = S.inverse_sqrt((d_model * warm) ** -0.5, warm)
  steps = [0, 1, 100, 3998, 3999, 4000, 10_000, 100_000, 2**31 - 2]
  got = np.asarray(jax.jit(sched)(jnp.asarray(steps, jnp.int32)), np.float64)
  ref = [d_model ** -0.5 * min((t + 1) ** -0.5, (t + 1) * warm ** -1.5) for t in steps]
  np.testing.assert_allclose(got, ref, rtol=RTOL)


def test_join_with_traced_step_and_traced_boundaries():
  parts = [S.linear_lr(0.1, 0.1, 1.0, 5), S.exponential_lr(0.1, 0.9), S.constant(0.01)]
  ts = jnp.arange(30)
  for bounds in ([5, 12], [3, 3]):
    ref = [float(parts[0](t)) if t < bounds[0] else float(parts[1](t - bounds[0]))
           if t < bounds[1] else float(parts[2](t - bounds[1])) for t in range(30)]
    got = jax.jit(lambda b: S.join(parts, [b[0], b[1]])(ts))(jnp.asarray(bounds))
    np.testing.assert_allclose(np.asarray(got), ref, rtol=RTOL)
  with pytest.raises(ValueError, match="`boundaries` must be non-decreasing"):
    S.join(parts, [5, 3])
  with pytest.raises(ValueError, match="`boundaries` must have"):
    S.join(parts, [5])


# -----------------------------------------------------------------------------------
# Every new schedule: jit, vmap over hyperparameters, finite and >= 0 at every int32 step
# -----------------------------------------------------------------------------------

def _chained_factory(lr, gamma, factor):
  return S.chained(lr, [S.constant_lr(lr, factor, 2), S.exponential_lr(lr, gamma)])


def _join_factory(lr, total_iters, boundary):
  return S.join([S.linear_lr(lr, 0.1, 1.0, total_iters),
                 S.cosine_annealing(lr, 25, periodic=True)], [boundary])


def _warmup_factory(peak, warmup_steps, init_lr, kind="linear"):
  return S.warmup(S.cosine_annealing(peak, 40, 0.001), warmup_steps, init_lr=init_lr,
                  kind=kind)


def _lambda_factory(lr):
  return S.lambda_lr(lr, lambda t: 1.0 / (1.0 + 0.5 * t))


def _multiplicative_factory(lr):
  return S.multiplicative_lr(lr, lambda e: 0.9 if e % 3 else 1.1, num_steps=500)


def _per_epoch_factory(lr, gamma):
  return S.per_epoch(S.exponential_lr(lr, gamma), 7)


def _from_torch_factory(lr, gamma):
  return S.from_torch("SequentialLR", lr=lr, milestones=[5], schedulers=[
      ("LinearLR", {"total_iters": 5}), ("ExponentialLR", {"gamma": gamma})])


def _from_keras_factory(initial_learning_rate, alpha):
  return S.from_keras("CosineDecay", initial_learning_rate=initial_learning_rate,
                      decay_steps=50, alpha=alpha)


# name -> (factory, static kwargs, three variants of the numeric hyperparameters)
VARIANTS = {
    "multi_step_lr": (S.multi_step_lr, {}, [
        dict(lr=0.1, milestones=[3, 7, 12], gamma=0.5),
        dict(lr=1.0, milestones=[0, 50, 50], gamma=0.9),
        dict(lr=0.01, milestones=[10, 20, 30], gamma=1.5)]),
    "linear_lr": (S.linear_lr, {}, [
        dict(lr=0.1, start_factor=0.1, end_factor=1.0, total_iters=5),
        dict(lr=1.0, start_factor=1.0, end_factor=0.0, total_iters=37),
        dict(lr=0.3, start_factor=0.5, end_factor=0.5, total_iters=1)]),
    "constant_lr": (S.constant_lr, {}, [
        dict(lr=0.1, factor=0.25, total_iters=4), dict(lr=1.0, factor=1.0, total_iters=0),
        dict(lr=0.5, factor=0.01, total_iters=90)]),
    "lambda_lr": (_lambda_factory, {}, [dict(lr=v) for v in (0.1, 1.0, 0.003)]),
    "multiplicative_lr": (_multiplicative_factory, {}, [dict(lr=v) for v in (0.1, 1.0, 3.0)]),
    "exponential_lr": (S.exponential_lr, {}, [
        dict(lr=0.1, gamma=0.9), dict(lr=1.0, gamma=0.5), dict(lr=0.01, gamma=1.0)]),
    "exponential_lr_growth": (S.exponential_lr, {}, [
        dict(lr=0.01, gamma=1.2, lr_cap=1.0), dict(lr=0.1, gamma=0.95, lr_cap=0.5),
        dict(lr=1e-4, gamma=1.01, lr_cap=10.0)]),
    "exponential_decay_growth": (S.exponential_decay, {}, [
        dict(r0=0.01, k=-0.2, lr_cap=1.0), dict(r0=0.1, k=0.05, lr_cap=0.1),
        dict(r0=1.0, k=-1e-3, lr_cap=2.0)]),
    "exp_range_growth": (S.exp_range, {}, [
        dict(min_lr=0.001, max_lr=0.006, step_size=5, gamma=1.05, lr_cap=0.05),
        dict(min_lr=0.0, max_lr=1.0, step_size=4, gamma=0.99, lr_cap=1.0),
        dict(min_lr=0.1, max_lr=0.1, step_size=3, gamma=2.0, lr_cap=0.2)]),
    "cosine_annealing_periodic": (S.cosine_annealing, dict(periodic=True), [
        dict(max_lr=0.1, total_steps=10, min_lr=0.001),
        dict(max_lr=1.0, total_steps=1, min_lr=0.0),
        dict(max_lr=0.5, total_steps=47, min_lr=0.4)]),
    "chained": (_chained_factory, {}, [
        dict(lr=1.0, gamma=0.9, factor=0.1), dict(lr=0.1, gamma=0.5, factor=1.0),
        dict(lr=0.02, gamma=0.99, factor=0.5)]),
    "join": (_join_factory, {}, [
        dict(lr=0.1, total_iters=5, boundary=5), dict(lr=1.0, total_iters=3, boundary=0),
        dict(lr=0.5, total_iters=20, boundary=20)]),
    "piecewise_constant_decay": (S.piecewise_constant_decay, {}, [
        dict(boundaries=[3, 6], values=[1.0, 0.5, 0.1]),
        dict(boundaries=[0, 100], values=[0.0, 0.2, 0.3]),
        dict(boundaries=[50, 51], values=[0.01, 0.001, 0.0001])]),
    "keras_cosine_decay": (S.keras_cosine_decay, {}, [
        dict(initial_learning_rate=0.1, decay_steps=10, alpha=0.1),
        dict(initial_learning_rate=1.0, decay_steps=100, alpha=0.0),
        dict(initial_learning_rate=0.3, decay_steps=1, alpha=1.0)]),
    "keras_cosine_decay_warmup": (S.keras_cosine_decay, {}, [
        dict(initial_learning_rate=0.0, decay_steps=10, alpha=0.1, warmup_target=0.2,
             warmup_steps=5),
        dict(initial_learning_rate=0.01, decay_steps=50, alpha=0.0, warmup_target=1.0,
             warmup_steps=0),
        dict(initial_learning_rate=0.1, decay_steps=3, alpha=0.5, warmup_target=0.1,
             warmup_steps=60)]),
    "keras_cosine_decay_restarts": (S.keras_cosine_decay_restarts, {}, [
        dict(initial_learning_rate=0.1, first_decay_steps=4, t_mul=2.0, m_mul=0.5, alpha=0.1),
        dict(initial_learning_rate=1.0, first_decay_steps=5, t_mul=1.0, m_mul=0.8, alpha=0.0),
        dict(initial_learning_rate=0.5, first_decay_steps=3, t_mul=3.0, m_mul=1.0,
             alpha=0.01)]),
    "keras_exponential_decay": (S.keras_exponential_decay, {}, [
        dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5),
        dict(initial_learning_rate=1.0, decay_steps=3, decay_rate=0.96),
        dict(initial_learning_rate=0.3, decay_steps=100, decay_rate=1.0)]),
    "keras_exponential_decay_stair_growth": (S.keras_exponential_decay,
                                             dict(staircase=True), [
        dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=2.0, lr_cap=1.0),
        dict(initial_learning_rate=1.0, decay_steps=3, decay_rate=0.5, lr_cap=1.0),
        dict(initial_learning_rate=1e-3, decay_steps=1, decay_rate=1.1, lr_cap=1e3)]),
    "keras_inverse_time_decay": (S.keras_inverse_time_decay, {}, [
        dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5),
        dict(initial_learning_rate=1.0, decay_steps=1, decay_rate=0.0),
        dict(initial_learning_rate=0.3, decay_steps=7, decay_rate=3.0)]),
    "keras_inverse_time_decay_stair": (S.keras_inverse_time_decay, dict(staircase=True), [
        dict(initial_learning_rate=0.1, decay_steps=4, decay_rate=0.5),
        dict(initial_learning_rate=1.0, decay_steps=1, decay_rate=0.1),
        dict(initial_learning_rate=0.3, decay_steps=7, decay_rate=3.0)]),
    "keras_polynomial_decay": (S.keras_polynomial_decay, {}, [
        dict(initial_learning_rate=0.1, decay_steps=10, end_learning_rate=0.001, power=2.0),
        dict(initial_learning_rate=0.0, decay_steps=50, end_learning_rate=0.1, power=1.0),
        dict(initial_learning_rate=1.0, decay_steps=7, end_learning_rate=0.0, power=0.5)]),
    "keras_polynomial_decay_cycle": (S.keras_polynomial_decay, dict(cycle=True), [
        dict(initial_learning_rate=0.1, decay_steps=5, end_learning_rate=0.01, power=0.5),
        dict(initial_learning_rate=1.0, decay_steps=1, end_learning_rate=0.0, power=1.0),
        dict(initial_learning_rate=0.3, decay_steps=30, end_learning_rate=0.3, power=3.0)]),
    "warmup": (_warmup_factory, {}, [
        dict(peak=0.1, warmup_steps=8, init_lr=0.0), dict(peak=1.0, warmup_steps=0, init_lr=0.5),
        dict(peak=0.5, warmup_steps=60, init_lr=0.01)]),
    "warmup_cosine": (_warmup_factory, dict(kind="cosine"), [
        dict(peak=0.1, warmup_steps=8, init_lr=0.0), dict(peak=1.0, warmup_steps=1, init_lr=0.5),
        dict(peak=0.5, warmup_steps=60, init_lr=0.01)]),
    "warmup_exponential": (_warmup_factory, dict(kind="exponential"), [
        dict(peak=0.1, warmup_steps=8, init_lr=1e-4), dict(peak=1.0, warmup_steps=1, init_lr=0.5),
        dict(peak=0.5, warmup_steps=60, init_lr=0.01)]),
    "warmup_stable_decay": (S.warmup_stable_decay, {}, [
        dict(peak_lr=0.3, warmup_steps=10, stable_steps=30, decay_steps=20, init_lr=0.0,
             final_lr=0.003),
        dict(peak_lr=1.0, warmup_steps=0, stable_steps=0, decay_steps=1, init_lr=0.0,
             final_lr=0.0),
        dict(peak_lr=0.1, warmup_steps=5, stable_steps=100, decay_steps=7, init_lr=0.01,
             final_lr=0.1)]),
    "warmup_stable_decay_cosine": (S.warmup_stable_decay,
                                   dict(cooldown="cosine", warmup_kind="cosine"),
                                   [dict(peak_lr=0.3, warmup_steps=10, stable_steps=30,
                                         decay_steps=20, init_lr=0.0, final_lr=0.003),
                                    dict(peak_lr=1.0, warmup_steps=3, stable_steps=0,
                                         decay_steps=50, init_lr=0.5, final_lr=0.0),
                                    dict(peak_lr=0.1, warmup_steps=5, stable_steps=100,
                                         decay_steps=7, init_lr=0.01, final_lr=0.1)]),
    "warmup_stable_decay_1_sqrt": (S.warmup_stable_decay,
                                   dict(cooldown="1-sqrt", warmup_kind="exponential"),
                                   [dict(peak_lr=0.3, warmup_steps=10, stable_steps=30,
                                         decay_steps=20, init_lr=0.003, final_lr=0.003),
                                    dict(peak_lr=1.0, warmup_steps=3, stable_steps=0,
                                         decay_steps=50, init_lr=0.5, final_lr=0.0),
                                    dict(peak_lr=0.1, warmup_steps=0, stable_steps=10,
                                         decay_steps=70, init_lr=0.01, final_lr=0.01)]),
    "inverse_sqrt": (S.inverse_sqrt, {}, [
        dict(peak_lr=1e-3, warmup_steps=4), dict(peak_lr=0.1, warmup_steps=1),
        dict(peak_lr=1.0, warmup_steps=100)]),
    "one_cycle_momentum": (S.one_cycle_momentum, {}, [
        dict(total_steps=20, pct_start=0.3, base_momentum=0.85, max_momentum=0.95),
        dict(total_steps=50, pct_start=0.5, base_momentum=0.5, max_momentum=0.99),
        dict(total_steps=7, pct_start=0.1, base_momentum=0.9, max_momentum=0.9)]),
    "one_cycle_momentum_linear_three": (S.one_cycle_momentum,
                                        dict(anneal_strategy="linear", three_phase=True), [
        dict(total_steps=20, pct_start=0.3, base_momentum=0.8, max_momentum=0.9),
        dict(total_steps=50, pct_start=0.25, base_momentum=0.5, max_momentum=0.99),
        dict(total_steps=97, pct_start=0.4, base_momentum=0.0, max_momentum=1.0)]),
    "cyclical_momentum": (S.cyclical_momentum, {}, [
        dict(step_size=4, step_size_down=2, gamma=1.0, base_momentum=0.8, max_momentum=0.9),
        dict(step_size=10, step_size_down=10, gamma=1.0, base_momentum=0.5, max_momentum=0.99),
        dict(step_size=2.5, step_size_down=7, gamma=1.0, base_momentum=0.9, max_momentum=0.9)]),
    "cyclical_momentum_exp_range": (S.cyclical_momentum, dict(mode="exp_range"), [
        dict(step_size=4, step_size_down=2, gamma=0.95, base_momentum=0.8, max_momentum=0.9),
        dict(step_size=10, step_size_down=10, gamma=0.99, base_momentum=0.5, max_momentum=0.99),
        dict(step_size=3, step_size_down=7, gamma=1.0, base_momentum=0.0, max_momentum=1.0)]),
    "one_cycle_linear_momentum": (S.one_cycle_linear_momentum,
                                  dict(step_size=41, total_steps=95), [
        dict(base_momentum=0.85, max_momentum=0.95),
        dict(base_momentum=0.5, max_momentum=0.99),
        dict(base_momentum=0.9, max_momentum=0.9)]),
    "per_epoch": (_per_epoch_factory, {}, [dict(lr=0.1, gamma=0.9), dict(lr=1.0, gamma=0.5),
                                           dict(lr=0.01, gamma=1.0)]),
    "from_torch": (_from_torch_factory, {}, [dict(lr=0.1, gamma=0.9), dict(lr=1.0, gamma=0.5),
                                             dict(lr=0.01, gamma=1.0)]),
    "from_keras": (_from_keras_factory, {}, [
        dict(initial_learning_rate=0.1, alpha=0.1), dict(initial_learning_rate=1.0, alpha=0.0),
        dict(initial_learning_rate=0.5, alpha=1.0)]),
}

NEW_MODULES = {S.torch_compat, S.keras_compat, S.warmups, S.momentum, S.compose, S.porting}


def test_every_new_public_schedule_is_covered():
  public = {name for module in NEW_MODULES for name in module.__all__
            if callable(getattr(module, name)) and name.islower()}
  covered = {name for name in VARIANTS} | {v[0].__name__ for v in VARIANTS.values()}
  assert public <= covered, public - covered


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_jit_vector_and_vmap(name):
  factory, static, variants = VARIANTS[name]
  check_jit_vector_and_vmap(factory, static, variants, rtol=RTOL, vmap_rtol=2e-6,
                            vmap_atol=1e-12)


_MAX = 2**31 - 1
INT32_STEPS = np.unique(np.concatenate([
    np.arange(0, 300), np.linspace(0, _MAX, 3001).astype(np.int64),
    [2**k + d for k in range(8, 31) for d in (-1, 0, 1)], [_MAX - 1, _MAX],
])).astype(np.int32)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_finite_and_non_negative_at_every_int32_step(name):
  factory, static, variants = VARIANTS[name]
  steps = jnp.asarray(INT32_STEPS)
  stacked = {k: jnp.asarray([rounded(kw)[k] for kw in variants]) for k in variants[0]}
  traced = np.asarray(jax.jit(jax.vmap(lambda hp: factory(**hp, **static)(steps)))(stacked))
  concrete = np.stack([np.asarray(jax.jit(factory(**kw, **static))(steps)) for kw in variants])
  for lrs in (traced, concrete):
    assert np.all(np.isfinite(lrs)), name
    assert np.all(lrs >= 0), name


@SETTINGS
@given(lr=st.floats(1e-6, 10.0), log_gamma=st.floats(1e-4, 5.0), room=st.floats(1.0, 1e12),
       step=st.integers(0, _MAX))
def test_capped_growth_is_finite_and_capped_everywhere(lr, log_gamma, room, step):
  cap = lr * room
  steps = jnp.asarray([0, 1, step, _MAX], jnp.int32)
  for sched in (S.exponential_lr(lr, math.exp(log_gamma), lr_cap=cap),
                S.exp_range(lr / 2, lr, 7, math.exp(log_gamma), lr_cap=cap)):
    got = np.asarray(jax.jit(sched)(steps), np.float64)
    assert np.all(np.isfinite(got)) and np.all(got >= 0)
    assert np.all(got <= f32(cap) * (1 + 1e-6))
  got = np.asarray(S.exponential_lr(lr, math.exp(log_gamma), lr_cap=cap)(steps), np.float64)
  exponent = np.minimum(log_gamma * np.asarray([0, 1, step, _MAX], np.float64), 100.0)
  ref = np.minimum(lr * np.exp(exponent), cap)
  np.testing.assert_allclose(got, ref, rtol=1e-5)


# -----------------------------------------------------------------------------------
# Validation: bad values raise at construction, naming the argument
# -----------------------------------------------------------------------------------

NAN = float("nan")
BAD = [
    (S.multi_step_lr, dict(lr=0.0, milestones=[3]), "lr"),
    (S.multi_step_lr, dict(lr=0.1, milestones=[3, -1]), "milestones"),
    (S.multi_step_lr, dict(lr=0.1, milestones=[2.5]), "milestones"),
    (S.multi_step_lr, dict(lr=0.1, milestones=[[1, 2]]), "milestones"),
    (S.multi_step_lr, dict(lr=0.1, milestones=[3], gamma=0.0), "gamma"),
    (S.multi_step_lr, dict(lr=0.1, milestones=list(range(300)), gamma=2.0), "gamma"),
    (S.linear_lr, dict(lr=0.1, start_factor=0.0), "start_factor"),
    (S.linear_lr, dict(lr=0.1, end_factor=1.5), "end_factor"),
    (S.linear_lr, dict(lr=0.1, total_iters=0), "total_iters"),
    (S.constant_lr, dict(lr=0.1, factor=NAN), "factor"),
    (S.constant_lr, dict(lr=0.1, total_iters=-1), "total_iters"),
    (S.lambda_lr, dict(lr=0.1, lr_lambda=0.5), "lr_lambda"),
    (S.lambda_lr, dict(lr=0.1, lr_lambda=lambda e: -1.0, num_steps=3), "lr_lambda"),
    (S.lambda_lr, dict(lr=0.1, lr_lambda=lambda e: 1 / e, num_steps=3), "lr_lambda"),
    (S.lambda_lr, dict(lr=0.1, lr_lambda=lambda e: 1.0, num_steps=0), "num_steps"),
    (S.multiplicative_lr, dict(lr=0.1, lr_lambda=lambda e: NAN, num_steps=3), "lr_lambda"),
    (S.multiplicative_lr, dict(lr=0.1, lr_lambda=lambda e: 10.0, num_steps=100), "lr_lambda"),
    (S.exponential_lr, dict(lr=0.1, gamma=1.5), "gamma"),
    (S.exponential_lr, dict(lr=0.1, gamma=0.0), "gamma"),
    (S.exponential_lr, dict(lr=0.1, gamma=1.5, lr_cap=0.05), "lr_cap"),
    (S.exponential_lr, dict(lr=0.1, gamma=1.5, lr_cap=1e40), "lr_cap"),
    (S.exponential_decay, dict(r0=0.1, k=-0.1), "k"),
    (S.exponential_decay, dict(r0=0.1, k=NAN, lr_cap=1.0), "k"),
    (S.exponential_decay, dict(r0=0.1, k=-0.1, lr_cap=float("inf")), "lr_cap"),
    (S.exp_range, dict(min_lr=0.001, max_lr=0.01, step_size=5, gamma=1.1), "gamma"),
    (S.exp_range, dict(min_lr=0.001, max_lr=0.01, step_size=5, gamma=1.1, lr_cap=0.005),
     "lr_cap"),
    (S.exp_range, dict(min_lr=0.001, max_lr=0.01, step_size=5, gamma=-1.1, lr_cap=1.0),
     "gamma"),
    (S.exp_range, dict(min_lr=0.001, max_lr=0.01, step_size=5, gamma=1.1, lr_cap=1e16),
     "lr_cap"),
    (S.join, dict(schedules=[], boundaries=[]), "schedules"),
    (S.join, dict(schedules=[S.constant(0.1), 0.2], boundaries=[3]), r"schedules\[1\]"),
    (S.join, dict(schedules=[S.constant(0.1)] * 2, boundaries=[-3]), "boundaries"),
    (S.chained, dict(lr=0.0, schedules=[S.constant(0.1)]), "lr"),
    (S.chained, dict(lr=0.1, schedules=[]), "schedules"),
    (S.piecewise_constant_decay, dict(boundaries=[], values=[1.0]), "boundaries"),
    (S.piecewise_constant_decay, dict(boundaries=[3, 3], values=[1.0, 0.5, 0.1]), "boundaries"),
    (S.piecewise_constant_decay, dict(boundaries=[3], values=[1.0, -0.5]), "values"),
    (S.piecewise_constant_decay, dict(boundaries=[3], values=[1.0]), "values"),
    (S.keras_cosine_decay, dict(initial_learning_rate=0.0, decay_steps=10),
     "initial_learning_rate"),
    (S.keras_cosine_decay, dict(initial_learning_rate=0.1, decay_steps=0), "decay_steps"),
    (S.keras_cosine_decay, dict(initial_learning_rate=0.1, decay_steps=10, alpha=2.0), "alpha"),
    (S.keras_cosine_decay, dict(initial_learning_rate=0.1, decay_steps=10, warmup_target=0.0),
     "warmup_target"),
    (S.keras_cosine_decay, dict(initial_learning_rate=0.1, decay_steps=10, warmup_target=0.2,
                                warmup_steps=-5), "warmup_steps"),
    (S.keras_cosine_decay_restarts, dict(initial_learning_rate=0.1, first_decay_steps=0),
     "first_decay_steps"),
    (S.keras_cosine_decay_restarts, dict(initial_learning_rate=0.1, first_decay_steps=5,
                                         t_mul=0.5), "t_mul"),
    (S.keras_cosine_decay_restarts, dict(initial_learning_rate=0.1, first_decay_steps=5,
                                         m_mul=1.5), "m_mul"),
    (S.keras_exponential_decay, dict(initial_learning_rate=0.1, decay_steps=0, decay_rate=0.5),
     "decay_steps"),
    (S.keras_exponential_decay, dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.0),
     "decay_rate"),
    (S.keras_inverse_time_decay, dict(initial_learning_rate=0.1, decay_steps=10,
                                      decay_rate=-1.0), "decay_rate"),
    (S.keras_polynomial_decay, dict(initial_learning_rate=0.1, decay_steps=10, power=0.0),
     "power"),
    (S.keras_polynomial_decay, dict(initial_learning_rate=0.1, decay_steps=10,
                                    end_learning_rate=-1.0), "end_learning_rate"),
    (S.warmup, dict(schedule=0.1, warmup_steps=5), "schedule"),
    (S.warmup, dict(schedule=S.constant(0.1), warmup_steps=-1), "warmup_steps"),
    (S.warmup, dict(schedule=S.constant(0.1), warmup_steps=5, kind="exponential"), "init_lr"),
    (S.warmup, dict(schedule=S.constant(0.1), warmup_steps=5, kind="quadratic"), "kind"),
    (S.warmup_stable_decay, dict(peak_lr=0.0, warmup_steps=1, stable_steps=1, decay_steps=1),
     "peak_lr"),
    (S.warmup_stable_decay, dict(peak_lr=0.1, warmup_steps=1, stable_steps=1, decay_steps=0),
     "decay_steps"),
    (S.warmup_stable_decay, dict(peak_lr=0.1, warmup_steps=1, stable_steps=1, decay_steps=5,
                                 final_lr=0.2), "final_lr"),
    (S.warmup_stable_decay, dict(peak_lr=0.1, warmup_steps=1, stable_steps=1, decay_steps=5,
                                 cooldown="sqrt"), "cooldown"),
    (S.inverse_sqrt, dict(peak_lr=0.1, warmup_steps=0), "warmup_steps"),
    (S.one_cycle_momentum, dict(total_steps=10, base_momentum=0.95, max_momentum=0.85),
     "base_momentum"),
    (S.one_cycle_momentum, dict(total_steps=10, max_momentum=1.5), "max_momentum"),
    (S.one_cycle_momentum, dict(total_steps=10, anneal_strategy="exp"), "anneal_strategy"),
    (S.cyclical_momentum, dict(step_size=0), "step_size"),
    (S.cyclical_momentum, dict(step_size=4, gamma=1.5), "gamma"),
    (S.cyclical_momentum, dict(step_size=4, mode="cosine"), "mode"),
    (S.per_epoch, dict(schedule=S.constant(0.1), steps_per_epoch=0), "steps_per_epoch"),
]


@pytest.mark.parametrize("factory,kwargs,arg", BAD,
                         ids=[f"{f.__name__}-{i}" for i, (f, _, a) in enumerate(BAD)])
def test_bad_hyperparameters_raise_naming_the_argument(factory, kwargs, arg):
  with pytest.raises(ValueError, match=f"`{arg}`"):
    factory(**kwargs)


def test_lambda_lr_without_table_accepts_a_jax_function_and_vmaps_over_steps():
  sched = S.lambda_lr(0.1, lambda t: 0.95 ** t)
  np.testing.assert_allclose(values(sched, 50), [0.1 * 0.95 ** t for t in range(50)],
                             rtol=2e-6)
  # tabulated: the rate holds its last value after num_steps
  sched = S.lambda_lr(0.1, lambda e: 0.5 if e < 5 else 0.1, num_steps=8)
  assert float(sched(2**31 - 1)) == float(sched(8)) == pytest.approx(0.01, rel=1e-6)


# -----------------------------------------------------------------------------------
# The porting document's example runs; gradients with respect to hyperparameters
# -----------------------------------------------------------------------------------

def test_porting_doc_example_runs():
  import pathlib
  import re
  text = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "porting.md").read_text()
  code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
  namespace = {}
  exec(compile(code, "docs/porting.md", "exec"), namespace)  # noqa: S102
  np.testing.assert_allclose(values(namespace["sched"], 35), SEQUENTIAL, rtol=RTOL)
  params = jnp.zeros(2)
  state = namespace["tx"].init(params)
  _, state = namespace["tx"].update(jnp.ones(2), state, params, valid_loss=1.0)
  assert float(state[1].lr) == f32(0.1)
  assert float(optax.tree_utils.tree_get(state, "lr")) == f32(0.1)


def test_gradients_with_respect_to_hyperparameters():
  grad = jax.grad(lambda peak: S.warmup_stable_decay(peak, 10, 30, 20)(25))(0.3)
  assert float(grad) == pytest.approx(1.0)
  grad = jax.grad(lambda lr: S.keras_cosine_decay(lr, 10, alpha=0.1)(5))(0.1)
  assert float(grad) == pytest.approx(0.55, rel=1e-6)
  grad = jax.grad(lambda lr: S.from_torch("LinearLR", lr=lr, start_factor=0.1,
                                          total_iters=5)(1))(0.1)
  assert float(grad) == pytest.approx(0.28, rel=1e-6)


# -----------------------------------------------------------------------------------
# Properties (hypothesis)
# -----------------------------------------------------------------------------------

PROP_STEPS = jnp.arange(0, 400, dtype=jnp.int32)
# 0 or a normal float32 fraction (XLA flushes subnormal bounds to zero)
fracs = st.one_of(st.just(0.0), st.floats(1e-6, 1.0))


@SETTINGS
@given(peak=st.floats(1e-4, 10.0), init_frac=fracs, final_frac=fracs,
       w=st.integers(0, 60), s=st.integers(0, 100), d=st.integers(1, 200),
       cooldown=st.sampled_from(["linear", "cosine", "1-sqrt"]),
       kind=st.sampled_from(["linear", "cosine", "exponential"]))
def test_warmup_stable_decay_rises_holds_and_falls(peak, init_frac, final_frac, w, s, d,
                                                   cooldown, kind):
  init = max(peak * init_frac, peak * 1e-3) if kind == "exponential" else peak * init_frac
  sched = S.warmup_stable_decay(peak, w, s, d, init_lr=init, final_lr=peak * final_frac,
                                warmup_kind=kind, cooldown=cooldown)
  lrs = np.asarray(sched(PROP_STEPS), np.float64)
  tol = 1e-6 * peak
  assert np.all(np.diff(lrs[:w + 1]) >= -tol)
  assert np.all(lrs[w:w + s + 1] == pytest.approx(f32(peak), rel=1e-6))
  assert np.all(np.diff(lrs[w + s:]) <= tol)
  assert np.all(lrs >= min(f32(init), f32(peak * final_frac)) * (1 - 1e-6))
  assert np.all(lrs <= f32(peak) * (1 + 1e-6))


@SETTINGS
@given(lr0=st.floats(1e-4, 10.0), t0=st.integers(1, 50), t_mul=st.sampled_from([1.0, 2.0, 3.0]),
       m_mul=fracs, alpha=fracs)
def test_keras_restarts_stay_between_floor_and_initial(lr0, t0, t_mul, m_mul, alpha):
  sched = S.keras_cosine_decay_restarts(lr0, t0, t_mul=t_mul, m_mul=m_mul, alpha=alpha)
  lrs = np.asarray(sched(PROP_STEPS), np.float64)
  assert np.all(lrs >= f32(lr0) * f32(alpha) * (1 - 1e-5))
  assert np.all(lrs <= f32(lr0) * (1 + 1e-6))
  assert lrs[0] == pytest.approx(f32(lr0), rel=1e-6)
  ref = [keras_restarts_ref(t, lr0, t0, t_mul, m_mul, alpha) for t in range(0, 400, 7)]
  np.testing.assert_allclose(lrs[::7], ref, rtol=2e-6, atol=1e-7 * lr0)


@SETTINGS
@given(lr=st.floats(1e-4, 10.0), milestones=st.lists(st.integers(0, 300), max_size=6),
       gamma=st.floats(0.01, 1.0))
def test_multi_step_lr_counts_milestones(lr, milestones, gamma):
  lrs = np.asarray(S.multi_step_lr(lr, milestones, gamma)(PROP_STEPS), np.float64)
  ref = [lr * gamma ** sum(m <= t for m in milestones) for t in range(400)]
  np.testing.assert_allclose(lrs, ref, rtol=2e-6)


@settings(max_examples=80, deadline=None)
@given(name=st.sampled_from(sorted(VARIANTS)), which=st.integers(0, 2),
       step=st.integers(0, 2**31 - 1))
def test_finite_and_non_negative_at_random_int32_steps(name, which, step):
  factory, static, variants = VARIANTS[name]
  lr = float(factory(**variants[which], **static)(jnp.asarray(step, jnp.int32)))
  assert math.isfinite(lr) and lr >= 0, (name, which, step, lr)


def test_current_lr_and_index_read_the_torch_plateau_state_in_any_chain():
  # PyTorch's trace PLATEAU_REL is the reference: the rate after each epoch and, counted
  # from it, the reductions applied (current_index: the position in lr0 factor^n).
  want_lr = np.asarray(PLATEAU_REL, np.float32)
  want_index = np.concatenate([[0], np.cumsum(np.diff(want_lr) < 0)])
  chains = {
      "alone": lambda: St.from_torch("ReduceLROnPlateau", lr=0.1, factor=0.5, patience=2),
      "after adam": lambda: optax.chain(optax.scale_by_adam(), St.reduce_lr_on_plateau(
          0.1, factor=0.5, patience=2)),
      "apply_if_finite": lambda: optax.apply_if_finite(optax.with_extra_args_support(
          optax.chain(optax.trace(0.9), St.reduce_lr_on_plateau(0.1, factor=0.5,
                                                                patience=2))), 3),
      "multi_steps": lambda: St.multi_steps(St.reduce_lr_on_plateau(
          0.1, factor=0.5, patience=2), every_k_schedule=1),
  }
  for name, make in chains.items():
    tx = make()

    @jax.jit
    def step(state, loss, tx=tx):
      _, state = tx.update(jnp.ones(2), state, jnp.zeros(2), valid_loss=loss)
      return state, St.current_lr(state), St.current_index(state)

    state = tx.init(jnp.zeros(2))
    assert float(St.current_lr(state)) == np.float32(0.1) and int(St.current_index(state)) == 0
    lrs, indices = [], []
    for loss in LOSSES:
      state, lr, index = step(state, loss)
      lrs.append(float(lr))
      indices.append(int(index))
    np.testing.assert_allclose(lrs, want_lr, rtol=RTOL, err_msg=name)
    np.testing.assert_array_equal(indices, want_index, err_msg=name)
    assert isinstance(St.strategy_state(state), St.TorchPlateauState)


def test_current_lr_and_index_of_vmapped_torch_plateau_states():
  factors = jnp.asarray([0.5, 0.2])

  def run(factor):
    tx = optax.chain(optax.scale_by_adam(), St.reduce_lr_on_plateau(0.1, factor=factor,
                                                                    patience=0))
    state = tx.init(jnp.zeros(2))
    for loss in (1.0, 1.0, 1.0):  # best at 1.0, then two bad epochs: two reductions
      _, state = tx.update(jnp.ones(2), state, jnp.zeros(2), valid_loss=loss)
    return state

  states = jax.jit(jax.vmap(run))(factors)
  np.testing.assert_allclose(np.asarray(St.current_lr(states)),
                             0.1 * np.asarray(factors) ** 2, rtol=1e-6)
  np.testing.assert_array_equal(np.asarray(St.current_index(states)), [2, 2])
  # a strategy state of each kind in one tree is ambiguous: refused, naming both kinds
  both = optax.chain(St.fixed(0.1), St.reduce_lr_on_plateau(0.1)).init(jnp.zeros(2))
  with pytest.raises(ValueError, match="StrategyState, TorchPlateauState.*found 2"):
    St.current_lr(both)
