"""The Triton kernels of :mod:`._triton_pool` and :mod:`._triton_loss` (their docstrings
give the algorithms).  Imported only when Triton is usable (see :mod:`._triton`)."""
import triton
import triton.language as tl


# ----------------------------------------------------------------------------- max pooling

@triton.jit
def _offsets(total, BLOCK: tl.constexpr, I64: tl.constexpr):
    """This program's BLOCK flat indices (int32 index arithmetic unless I64: 64-bit
    division costs many instructions on a GPU) and which of them exist."""
    pid = tl.program_id(0)
    if I64:
        pid = pid.to(tl.int64)
    o = pid * BLOCK + tl.arange(0, BLOCK)
    return o, o < total


@triton.jit
def _window_start(o, H, W, YH, YW, SY, SX, PT, PL):
    plane = o // (YH * YW)
    r = o % (YH * YW)
    return plane * H * W, (r // YW) * SY - PT, (r % YW) * SX - PL


@triton.jit
def _visit(x_ptr, base, v0, u0, H, W, live, best, index, nan, WIDE: tl.constexpr):
    """One window element: the first strict maximum wins; NaN is noted, never selected."""
    ok = live & (u0 >= 0) & (u0 < W) & (v0 >= 0) & (v0 < H)
    at = v0 * W + u0
    val = tl.load(x_ptr + base + at, mask=ok, other=float("-inf")).to(WIDE)
    better = val > best
    return tl.where(better, val, best), tl.where(better, at, index), nan | (val != val)


@triton.jit
def _store_pool(y_ptr, idx_ptr, o, live, best, index, nan):
    y = tl.where(nan, float("nan"), best)
    tl.store(y_ptr + o, y.to(y_ptr.dtype.element_ty), mask=live)
    tl.store(idx_ptr + o, index.to(tl.int64), mask=live)


@triton.jit
def max_pool_switches(x_ptr, y_ptr, idx_ptr, total, H, W, YH, YW, PH, PW, SY, SX, PT, PL,
                      BLOCK: tl.constexpr, WIDE: tl.constexpr, I64: tl.constexpr):
    """Any window size: runtime loops, columns outer."""
    o, live = _offsets(total, BLOCK, I64)
    base, v_start, u_start = _window_start(o, H, W, YH, YW, SY, SX, PT, PL)
    best = tl.full([BLOCK], float("-inf"), WIDE)
    index = tl.full([BLOCK], -1, o.dtype)
    nan = tl.zeros([BLOCK], tl.int1)
    for j in range(0, PW):
        for i in range(0, PH):
            best, index, nan = _visit(x_ptr, base, v_start + i, u_start + j, H, W, live, best,
                                      index, nan, WIDE)
    _store_pool(y_ptr, idx_ptr, o, live, best, index, nan)


@triton.jit
def max_pool_switches_unrolled(x_ptr, y_ptr, idx_ptr, total, H, W, YH, YW, SY, SX, PT, PL,
                               PH: tl.constexpr, PW: tl.constexpr, BLOCK: tl.constexpr,
                               WIDE: tl.constexpr, I64: tl.constexpr):
    """Small windows (a compile per window size): the loops unrolled, columns outer."""
    o, live = _offsets(total, BLOCK, I64)
    base, v_start, u_start = _window_start(o, H, W, YH, YW, SY, SX, PT, PL)
    best = tl.full([BLOCK], float("-inf"), WIDE)
    index = tl.full([BLOCK], -1, o.dtype)
    nan = tl.zeros([BLOCK], tl.int1)
    for j in tl.static_range(PW):
        for i in tl.static_range(PH):
            best, index, nan = _visit(x_ptr, base, v_start + i, u_start + j, H, W, live, best,
                                      index, nan, WIDE)
    _store_pool(y_ptr, idx_ptr, o, live, best, index, nan)


# ----------------------------------------------------------------------------- softmaxlog

@triton.jit
def _tile(x_ptr, base, k0, S, live, C, BLOCK_C: tl.constexpr, WIDE: tl.constexpr):
    k = k0 + tl.arange(0, BLOCK_C)
    ok = (k < C)[:, None] & live[None, :]
    ptr = x_ptr + base[None, :] + k[:, None].to(tl.int64) * S
    return k, ok, tl.load(ptr, mask=ok, other=float("-inf")).to(WIDE)


@triton.jit
def _lse(x_ptr, base, S, live, C, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr,
         WIDE: tl.constexpr):
    m = tl.full([BLOCK_P], float("-inf"), WIDE)
    l = tl.zeros([BLOCK_P], WIDE)
    for k0 in range(0, C, BLOCK_C):
        k, ok, v = _tile(x_ptr, base, k0, S, live, C, BLOCK_C, WIDE)
        m_new = tl.maximum(m, tl.max(v, axis=0))
        # lanes that have seen only -inf (masked) keep m = -inf: shift by 0 there
        shift = tl.where(m_new == float("-inf"), 0.0, m_new)
        l = l * tl.exp(m - shift) + tl.sum(tl.exp(v - shift[None, :]), axis=0)
        m = m_new
    return tl.where(m == float("-inf"), m, m + tl.log(l))


@triton.jit
def _positions(c_ptr, P, S, CN, CS, BLOCK_P: tl.constexpr):
    p = tl.program_id(0).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    live = p < P
    n = p // S
    s = p % S
    label = tl.load(c_ptr + n * CN + s * CS, mask=live, other=0).to(tl.int64)
    return p, live, n, s, label


@triton.jit
def softmaxlog_loss(x_ptr, c_ptr, t_ptr, P, C, S, CN, CS,
                    BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, WIDE: tl.constexpr):
    p, live, n, s, label = _positions(c_ptr, P, S, CN, CS, BLOCK_P)
    base = n * C * S + s
    lse = _lse(x_ptr, base, S, live, C, BLOCK_C, BLOCK_P, WIDE)
    has = live & (label >= 1)
    xc = tl.load(x_ptr + base + (label - 1) * S, mask=has, other=0).to(WIDE)
    t = tl.where(has, lse - xc, 0.0)
    tl.store(t_ptr + p, t.to(t_ptr.dtype.element_ty), mask=live)


@triton.jit
def softmaxlog_derivative(x_ptr, c_ptr, g_ptr, g_value, dx_ptr, P, C, S, CN, CS, GN, GS,
                          G_TENSOR: tl.constexpr, BLOCK_C: tl.constexpr,
                          BLOCK_P: tl.constexpr, WIDE: tl.constexpr):
    p, live, n, s, label = _positions(c_ptr, P, S, CN, CS, BLOCK_P)
    base = n * C * S + s
    lse = _lse(x_ptr, base, S, live, C, BLOCK_C, BLOCK_P, WIDE)
    if G_TENSOR:
        g = tl.load(g_ptr + n * GN + s * GS, mask=live, other=0).to(WIDE)
    else:
        g = tl.zeros([BLOCK_P], WIDE) + g_value
    target = label - 1
    for k0 in range(0, C, BLOCK_C):
        k, ok, v = _tile(x_ptr, base, k0, S, live, C, BLOCK_C, WIDE)
        d = tl.exp(v - lse[None, :]) - (k[:, None] == target[None, :]).to(WIDE)
        d = d * g[None, :]
        ptr = dx_ptr + base[None, :] + k[:, None].to(tl.int64) * S
        tl.store(ptr, d.to(dx_ptr.dtype.element_ty), mask=ok)
