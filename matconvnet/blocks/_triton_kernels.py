"""The Triton kernels of :mod:`._triton_pool` and :mod:`._triton_loss` (their docstrings
give the algorithms).  Imported only when Triton is usable (see :mod:`._triton`)."""
import triton
import triton.language as tl


# ----------------------------------------------------------------------------- max pooling

@triton.jit
def max_pool_switches(x_ptr, y_ptr, idx_ptr, total, H, W, YH, YW, PH, PW, SY, SX, PT, PL,
                      BLOCK: tl.constexpr, WIDE: tl.constexpr):
    o = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = o < total
    plane = o // (YH * YW)
    r = o % (YH * YW)
    oy = r // YW
    ox = r % YW
    base = x_ptr + plane * H * W
    best = tl.full([BLOCK], float("-inf"), WIDE)
    index = tl.full([BLOCK], -1, tl.int64)
    nan = tl.zeros([BLOCK], tl.int1)
    for j in range(0, PW):
        u0 = ox * SX - PL + j
        col = live & (u0 >= 0) & (u0 < W)
        for i in range(0, PH):
            v0 = oy * SY - PT + i
            ok = col & (v0 >= 0) & (v0 < H)
            at = v0 * W + u0
            val = tl.load(base + at, mask=ok, other=float("-inf")).to(WIDE)
            nan = nan | (val != val)
            better = val > best
            best = tl.where(better, val, best)
            index = tl.where(better, at, index)
    y = tl.where(nan, float("nan"), best)
    tl.store(y_ptr + o, y.to(y_ptr.dtype.element_ty), mask=live)
    tl.store(idx_ptr + o, index, mask=live)


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
