"""Array semantics (docs/contract.md, Arrays) for every activation and entry point, both backends:
shapes, strides, layouts, dtypes, scalars, out=, in place, overlap, byte order."""
import numpy as np
import pytest

import fastact
from helpers import same

NAMES = fastact.ACTIVATIONS
PARAMS = {"threshold": {"threshold": 0.25, "value": -1.0}}
ENTRIES = ("", "_grad", "_backward", "_forward_backward")


def run(name, entry, x, **kw):
    """Call an entry point; backward gets grad_output = 1.5 * ones."""
    f = getattr(fastact, name + entry)
    params = PARAMS.get(name, {})
    if entry == "_backward":
        g = kw.pop("g", None)
        if g is None:
            g = np.full(np.shape(x), 1.5, dtype=np.asarray(x).dtype if np.asarray(x).dtype.kind == "f" else None)
        return f(g, x, **params, **kw)
    return f(x, **params, **kw)


def data(shape, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 3).astype(dtype)


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_layouts(name, entry, backend, dtype):
    for shape in [(), (0,), (7,), (3, 4), (2, 3, 5), (0, 3)]:
        x = data(shape, dtype)
        r = run(name, entry, x)
        for res in (r if isinstance(r, tuple) else (r,)):
            assert np.shape(res) == shape and res.dtype == dtype
            if shape == ():
                assert isinstance(res, np.generic)        # a NumPy scalar, as a ufunc gives
    x = data((6, 8), dtype)
    expected = run(name, entry, x)
    for view, order in [(np.asfortranarray(x), "F"), (x[:, ::-1], "C"), (x[::2, ::3], "C"),
                        (x.T, "F"), (x[::-1], "C")]:
        got = run(name, entry, view)
        ref = run(name, entry, np.ascontiguousarray(view))
        for g_, r_ in zip(got if isinstance(got, tuple) else (got,),
                          ref if isinstance(ref, tuple) else (ref,)):
            assert same(g_, r_)
            assert g_.flags.f_contiguous if order == "F" else g_.flags.c_contiguous
    assert same(run(name, entry, np.ascontiguousarray(x)), expected)


@pytest.mark.parametrize("name", NAMES)
def test_dtypes(name, backend):
    x = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 2.0, 7.0])
    f = getattr(fastact, name)
    p = PARAMS.get(name, {})
    y16 = f(x.astype(np.float16), **p)
    assert y16.dtype == np.float16
    assert same(y16, f(x.astype(np.float16).astype(np.float32), **p).astype(np.float16))
    for dt in (np.int8, np.int32, np.int64, np.uint8, np.bool_):
        xi = np.abs(x).astype(dt) if dt in (np.uint8, np.bool_) else x.astype(dt)
        yi = f(xi, **p)
        assert yi.dtype == np.float64
        assert same(yi, f(xi.astype(np.float64), **p))
    assert same(f([-1.0, 2.0], **p), f(np.array([-1.0, 2.0]), **p))
    s = f(0.5, **p)
    assert type(s) is np.float64 and s == f(np.array([0.5]), **p)[0]
    assert type(f(2, **p)) is np.float64
    assert type(f(np.float32(0.5), **p)) is np.float32


@pytest.mark.parametrize("bad", [np.array([1 + 2j]), np.array([None, 1.0], dtype=object),
                                 np.array(["a"]), np.array(["2020-01-01"], dtype="datetime64[D]"),
                                 np.array([1], dtype="timedelta64[s]"),
                                 np.array([1.0], dtype=np.longdouble), "text"])
@pytest.mark.parametrize("entry", ENTRIES)
def test_bad_dtypes(bad, entry, backend):
    if entry == "_backward":
        with pytest.raises(TypeError, match=r"float16, bfloat16 \(ml_dtypes\), float32, float64"):
            fastact.tanh_backward(np.ones(np.shape(bad)), bad)
        with pytest.raises(TypeError, match="grad_output"):
            fastact.tanh_backward(bad, np.ones(np.shape(bad)))
        return
    if np.asarray(bad).dtype == np.float64:       # longdouble is float64 on some platforms
        pytest.skip("longdouble is float64 here")
    with pytest.raises(TypeError, match=r"float16, bfloat16 \(ml_dtypes\), float32, float64"):
        getattr(fastact, "tanh" + entry)(bad)


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("name", NAMES)
def test_out(name, entry, backend, dtype):
    x = data((4, 5), dtype)
    expected = run(name, entry, x)
    if entry == "_forward_backward":
        o1, o2 = np.empty_like(x), np.empty_like(x)
        r = run(name, entry, x, out=o1, grad_out=o2)
        assert r[0] is o1 and r[1] is o2 and same(r, expected)
        o1, o2 = np.empty((5, 4), dtype).T, np.empty((4, 10), dtype)[:, ::2]   # any layout
        assert same(run(name, entry, x, out=o1, grad_out=o2), expected)
        with pytest.raises(ValueError, match="overlap"):
            run(name, entry, x, out=o1, grad_out=o1)
        return
    out = np.empty_like(x)
    assert run(name, entry, x, out=out) is out and same(out, expected)
    for out in (np.empty((5, 4), dtype).T, np.empty((4, 10), dtype)[:, ::2],
                np.empty((4, 5), dtype, order="F")):
        assert same(run(name, entry, x, out=out), expected)


@pytest.mark.parametrize("entry", ENTRIES)
def test_bad_out_raises_before_writing(entry, backend):
    x = data((4, 5))
    key = "grad_out" if entry == "_forward_backward" else "out"
    for out, exc in [(np.full((5, 4), 7.0), ValueError), (np.full((4, 5), 7, np.float32), TypeError),
                     (np.full((4, 5), 7, np.int64), TypeError), ([[7.0] * 5] * 4, TypeError)]:
        with pytest.raises(exc, match=key):
            run("tanh", entry, x, **{key: out})
        assert np.all(np.asarray(out) == 7)
    ro = np.full((4, 5), 7.0)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        run("tanh", entry, x, **{key: ro})
    if entry == "_forward_backward":              # out checked too, before anything is written
        good = np.full((4, 5), 7.0)
        with pytest.raises(ValueError):
            run("tanh", entry, x, out=good, grad_out=np.empty((2, 2)))
        assert np.all(good == 7)


@pytest.mark.parametrize("entry", ["", "_grad", "_backward"])
@pytest.mark.parametrize("name", NAMES)
def test_in_place_and_overlap(name, entry, backend, dtype):
    x = data(64, dtype)
    expected = run(name, entry, x.copy())
    y = x.copy()
    assert run(name, entry, y, out=y) is y and same(y, expected)          # in place
    buf = np.concatenate([x, [0]]).astype(dtype)
    view_in, view_out = buf[:-1], buf[1:]                                # shifted by one
    assert same(run(name, entry, view_in, out=view_out), expected)
    buf = np.concatenate([[0], x]).astype(dtype)
    assert same(run(name, entry, buf[1:], out=buf[:-1]), expected)
    rev = x.copy()
    assert same(run(name, entry, rev, out=rev[::-1]), expected)         # reversed onto itself
    assert same(rev, expected[::-1])


@pytest.mark.parametrize("entry", ENTRIES)
def test_input_not_modified(entry, backend):
    x = data((3, 7))
    keep = x.copy()
    g = np.full_like(x, 2.0)
    if entry == "_backward":
        fastact.gelu_backward(g, x)
    else:
        getattr(fastact, "gelu" + entry)(x)
    assert np.array_equal(x, keep) and np.all(g == 2.0)


def test_byte_order_and_alignment(backend, dtype):
    x = data(33, dtype)
    expected = fastact.gelu(x)
    swapped = x.astype(x.dtype.newbyteorder(">"))
    r = fastact.gelu(swapped)
    assert r.dtype == dtype and r.dtype.isnative and same(r, expected)
    out = np.empty(33, x.dtype.newbyteorder(">"))
    assert fastact.gelu(x, out=out) is out and same(out.astype(dtype), expected)
    raw = bytearray(x.nbytes + 1)
    unaligned = np.frombuffer(raw, dtype=dtype, offset=1, count=33)
    unaligned[...] = x
    assert not unaligned.flags.aligned
    assert same(fastact.gelu(unaligned), expected)
    assert same(fastact.gelu_backward(unaligned, unaligned),
                fastact.gelu_backward(x, x))


def test_backward_shapes_and_dtypes(backend):
    with pytest.raises(ValueError, match="grad_output"):
        fastact.tanh_backward(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="grad_output"):
        fastact.tanh_forward_backward(np.ones(4), grad_output=np.ones((2, 2)))
    r = fastact.tanh_backward(np.ones(3, np.float32), np.ones(3))
    assert r.dtype == np.float64
    r = fastact.tanh_backward(np.ones(3, np.float16), np.ones(3, np.float16))
    assert r.dtype == np.float16
    y, g = fastact.tanh_forward_backward(0.5, grad_output=2.0)
    assert type(y) is np.float64 and type(g) is np.float64
    assert g == 2 * fastact.tanh_grad(0.5)


@pytest.mark.parametrize("name", NAMES)
def test_python_scalars_are_weak(name, backend):
    """A Python bool, int or float takes the other input's dtype, as NumPy 2 promotes
    (np.result_type is the reference): grad_output=2.0 with a float32 x gives float32, a
    float64 0-d array or NumPy scalar does not; with Python scalars only, float64."""
    p = PARAMS.get(name, {})
    f = lambda suffix: getattr(fastact, name + suffix)  # noqa: E731
    strong = [np.float16(0.75), np.float32(-0.75), np.float64(1.5), np.array(0.75, np.float32),
              np.array(2.0), np.int32(2)]
    pairs = ([(g, x) for g in (2.0, 3, True, -0.5) for x in strong]
             + [(g, x) for g in strong for x in (0.75, -2, False)]
             + [(1.5, 0.75), (2, True)])
    for g, x in pairs:
        expected = np.result_type(g, x)
        if expected.kind in "biu":
            expected = np.dtype(np.float64)           # integers are computed in float64
        g64, x64 = np.float64(g), np.float64(x)
        for label, r in [("backward", f("_backward")(g, x, **p)),
                         ("forward_backward", f("_forward_backward")(x, grad_output=g, **p)[1])]:
            assert r.dtype == expected, (label, g, x, r.dtype, expected)
            ref = np.float64(f("_backward")(g64, x64, **p))
            assert np.isclose(np.float64(r), ref, rtol=2e-3, atol=1e-30, equal_nan=True), \
                (label, g, x, r, ref)


def test_python_scalars_are_weak_beyond_the_elementwise(backend):
    """The same rule for the softmax family, prelu and rrelu's noise, and the gated units."""
    x32 = np.float32(0.5)
    assert fastact.softmax_backward(2.0, y=np.float32(1.0)).dtype == np.float32
    assert fastact.log_softmax_forward_backward(x32, grad_output=1)[1].dtype == np.float32
    assert fastact.prelu_backward(1.0, np.float32(-0.5), 0.25)[0].dtype == np.float32
    assert fastact.prelu_backward(np.array(1.0), np.float32(-0.5), 0.25)[0].dtype == np.float64
    assert fastact.rrelu_backward(2.0, np.float32(-1.0), noise=np.float32(0.2)).dtype \
        == np.float32
    assert fastact.swiglu_backward(np.array([2.0], np.float32), [1, 2]).dtype == np.float64
    assert fastact.swiglu_backward([2.0], np.array([1, 2], np.float16)).dtype == np.float64


@pytest.mark.parametrize("name", NAMES)
def test_compiled_path_allocates_only_outputs(name):
    """With out= nothing proportional to n is allocated; without, exactly the outputs
    (NumPy reports its buffers to tracemalloc)."""
    import tracemalloc
    if fastact.backend() != "compiled":
        pytest.skip("the NumPy fallback computes with temporaries")
    x = data(1 << 18)
    g, out, out2 = np.ones_like(x), np.empty_like(x), np.empty_like(x)
    p = PARAMS.get(name, {})
    f = lambda suffix: getattr(fastact, name + suffix)  # noqa: E731
    calls = [(lambda: f("")(x, **p, out=out), 0), (lambda: f("_grad")(x, **p, out=out), 0),
             (lambda: f("_backward")(g, x, **p, out=out), 0),
             (lambda: f("_forward_backward")(x, **p, out=out, grad_out=out2), 0),
             (lambda: f("")(x, **p), 1), (lambda: f("_backward")(g, x, **p), 1),
             (lambda: f("_forward_backward")(x, **p, grad_output=g), 2)]
    for call, outputs in calls:
        call()
        tracemalloc.start()
        try:
            call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert outputs * x.nbytes <= peak < outputs * x.nbytes + 64 * 1024, (outputs, peak)


@pytest.mark.parametrize("entry", ENTRIES)
def test_masked_arrays_keep_their_mask(entry, backend):
    """As NumPy's ufuncs: computed on the data, masked where any input is masked."""
    import numpy.ma as ma
    data = np.linspace(-3, 3, 12).reshape(3, 4)
    x = ma.masked_array(data, mask=data > 2)
    g = ma.masked_array(np.full_like(data, 0.5), mask=data < -2.5)
    f = getattr(fastact, "elu" + entry)
    args = (g, x) if entry == "_backward" else (x,)
    plain = getattr(fastact, "elu" + entry)(*[ma.getdata(a) for a in args])
    got = f(*args)
    for res, ref in zip(got if isinstance(got, tuple) else (got,),
                        plain if isinstance(plain, tuple) else (plain,)):
        assert isinstance(res, ma.MaskedArray)
        expected_mask = (data > 2) | ((data < -2.5) if entry == "_backward" else False)
        assert np.array_equal(ma.getmaskarray(res), expected_mask)
        assert np.array_equal(res.data[~expected_mask], ref[~expected_mask])


@pytest.mark.parametrize("with_out", [False, True])
def test_masked_forward_backward_with_grad_output(with_out, backend):
    """forward_backward(x, grad_output=g) on masked arrays: y = f(x) reads x alone and is
    masked where x is (as fastact.elu(x)), the gradient g f'(x) where either is."""
    import numpy.ma as ma
    data = np.linspace(-3, 3, 12).reshape(3, 4)
    x = ma.masked_array(data, mask=data > 2)
    g = ma.masked_array(np.full_like(data, 0.5), mask=data < -2.5)
    outs = {}
    if with_out:
        outs = dict(out=ma.masked_array(np.zeros_like(data)),
                    grad_out=ma.masked_array(np.zeros_like(data)))
    y, gd = fastact.elu_forward_backward(x, grad_output=g, **outs)
    assert np.array_equal(ma.getmaskarray(y), ma.getmaskarray(fastact.elu(x)))
    assert np.array_equal(ma.getmaskarray(y), data > 2)
    assert np.array_equal(ma.getmaskarray(gd), (data > 2) | (data < -2.5))
    want = np.where(data > 0, data, np.expm1(data)), np.where(data > 0, 0.5, 0.5 * np.exp(data))
    np.testing.assert_allclose(y.data[~y.mask], want[0][~y.mask], rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(gd.data[~gd.mask], want[1][~gd.mask], rtol=1e-15, atol=1e-16)
    if with_out:
        assert y is outs["out"] and gd is outs["grad_out"]


# the functions that are not elementwise, each with its masked inputs in every position
_NOT_ELEMENTWISE = [
    ("softmax", lambda m: fastact.softmax(m)),
    ("log_softmax", lambda m: fastact.log_softmax(m, axis=0)),
    ("softmin", lambda m: fastact.softmin_backward(np.ones(m.shape), y=m)),
    ("softmax", lambda m: fastact.softmax_forward_backward(np.ones(m.shape), -1, m)),
    ("glu", lambda m: fastact.glu(m)),
    ("swiglu", lambda m: fastact.swiglu_backward(np.ones((2, 2)), m)),
    ("geglu", lambda m: fastact.geglu(m[:, :2], np.asarray(m[:, 2:]))),
    ("reglu", lambda m: fastact.reglu_forward_backward(np.asarray(m[:, :2]), m[:, 2:])),
    ("glu", lambda m: fastact.GLU()(m)),
    ("prelu", lambda m: fastact.prelu(m, 0.1)),
    ("prelu", lambda m: fastact.prelu_backward(m, np.ones(m.shape), 0.1)),
    ("prelu", lambda m: fastact.prelu(np.ones(m.shape), np.ma.masked_array([0.1]))),
    ("rrelu", lambda m: fastact.rrelu(m, training=True, seed=0)),
    ("rrelu", lambda m: fastact.rrelu_grad(m)),
]


@pytest.mark.parametrize("name, call", _NOT_ELEMENTWISE,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(_NOT_ELEMENTWISE)])
def test_masked_arrays_refused_where_not_elementwise(name, call, backend):
    """The softmax family, the gated units, prelu and rrelu would compute on the masked
    data (in softmax, a masked entry would change every result of its row): TypeError,
    which names the function (docs/contract.md, Arrays)."""
    m = np.ma.masked_array(np.arange(8.0).reshape(2, 4), mask=[[0, 1, 0, 0], [0, 0, 0, 0]])
    with pytest.raises(TypeError, match=name + r"\(\) does not take masked arrays"):
        call(m)
