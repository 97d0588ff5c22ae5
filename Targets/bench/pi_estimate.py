#!/usr/bin/env python3
"""Raspberry Pi latency ESTIMATE for an int8 mvquant model: an llvm-mca cost model, not a measurement.

  Targets/bench/pi_estimate.py --model M [--size HxW] [--cpu a72|a76|both] [--json OUT]
                               [--compare MEASURED.json] [--kernels]
  Targets/bench/pi_estimate.py --x86-check BENCH.json --model M [--size HxW]

Method (Targets/README.md, "Raspberry Pi latency estimate"):
 1. The package's aarch64 kernel files (gemm_neon.c, gemm_neondot.c, dwconv_neon.c,
    nonlinear_neon.c) are compiled to assembly with the package's own flags for a generic aarch64
    build (`clang --target=aarch64-linux-gnu -O2 -S`; gemm_neondot.c carries its own
    `target("arch=armv8.2-a+dotprod")` attribute, as in the package).
 2. The hot loops are found from the loop annotations LLVM writes into the assembly
    ("=>This Inner Loop Header: Depth=N", "in Loop: Header=.LBBx_y"), not from label names: every
    loop's own blocks (blocks in nested loops and blocks that call a function left out) form a
    straight-line body, and each kernel family takes, among the loops of its function, the one
    doing the most work per iteration. The work of an iteration is counted from the loop's
    instructions themselves (e.g. 16 MACs per `sdot`, 8 per `smull`/`smlal2`, 8 elements per
    8-byte int8 store), so an unrolled or restructured loop is still measured per MAC/element; a
    kernel whose loop cannot be found stops the script.
 3. llvm-mca (-mcpu=cortex-a72 / cortex-a76, 200 iterations) gives cycles per iteration =
    max(simulated cycles / iterations, block reciprocal throughput) -> cycles per MAC (GEMM,
    depthwise) or per element (softmax, LayerNorm, add). For the GEMMs the tile loop around the
    k loop is analysed too (its own blocks: requantisation, stores, bias) as cycles per output tile.
 4. `mvquant inspect --json` gives every layer's kind, output shape and MACs; each kind maps to a
    kernel family (1x1 conv/linear -> GEMM; dense kxk -> im2col + GEMM; depthwise -> dwconv;
    attention -> QK^T and P.V GEMMs (B = activations: the A72's "B has -128" loop) + softmax per
    score + packing; LayerNorm/add -> their loops; pool/resize/input quantisation -> the add loop's
    cost per element as a stand-in for those Swift loops). A layer's time is
    max(compute cycles / clock, bytes moved / bandwidth). One thread.
 5. Rows are named and folded as `mvquant bench --layers` reports them (an int8 bilinear resize
    is charged to the next tensor, the last operator is "logits" / "logits and labels"), and the
    per-kind totals use the same rule, so `--compare MEASURED.json` (bench --layers --json from
    the Pi, see deploy.sh) puts estimate and measurement side by side.

Python standard library only. Needs clang (default /opt/swift/usr/bin/clang or $CLANG) and
llvm-mca (default llvm-mca or $LLVM_MCA); `mvquant inspect` from .build/release unless --inspect.
"""
import argparse
import collections
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
KSRC = os.path.join(REPO, 'Sources', 'MVKernelsC')

# CPUs: clock (GHz), assumed sustained single-core DRAM bandwidth (GB/s), kernels the runtime picks.
CPUS = {
    'a72': dict(title='Raspberry Pi 4 (Cortex-A72)', mcpu='cortex-a72', ghz=1.8, gbs=4.0, isa='neon'),
    'a76': dict(title='Raspberry Pi 5 (Cortex-A76)', mcpu='cortex-a76', ghz=2.4, gbs=8.0, isa='neondot'),
}
HEADER = 'ESTIMATE (llvm-mca cost model, not a measurement)'

# ---------------------------------------------------------------------------------------------
# Kernel families: which file, which function(s), how to count an iteration's work.


def cnt(insns, pattern):
    r = re.compile(pattern)
    return sum(1 for i in insns if r.search(i))


def ksteps(b):
    """Whether a block holds a whole K step of a GEMM (an inlined tail step, either variant)."""
    return cnt(b, r'^(smull2?|smlal2?|sdot|vpdpbusd)\s') >= 8


def mulls(b):
    return cnt(b, r'^(smull2?|smlal2?)\s')


# family -> (file, function regex, work-per-iteration function (0 = not this loop), unit)
ARM = {
    'gemm_neon': ('gemm_neon.c', r'gemm_neon', lambda b: 8 * mulls(b) if cnt(b, r'^smlal2\s') else 0, 'MAC'),
    'gemm_neon_bmin': ('gemm_neon.c', r'gemm_neon',
                       lambda b: 8 * mulls(b) if cnt(b, r'^smull2\s') and not cnt(b, r'^smlal2?\s') else 0, 'MAC'),
    'gemm_neondot': ('gemm_neondot.c', r'gemm_neondot', lambda b: 16 * cnt(b, r'^sdot\s'), 'MAC'),
    'dwconv': ('dwconv_neon.c', r'mv_dw3x3_neon', lambda b: 8 * mulls(b) if cnt(b, r'^saddw2?\s') else 0, 'MAC'),
    'softmax_max': ('nonlinear_neon.c', r'softmax', lambda b: 4 * cnt(b, r'^smax\s+v\d+\.4s')
                    if not cnt(b, r'^(mul|umlal2?|umull2?)\s') else 0, 'element'),
    # 8 scores' e (uint16) leave per q register stored (str, or stp of two).
    'softmax_exp': ('nonlinear_neon.c', r'softmax', lambda b: 8 * cnt(b, r'^(str|stur)\s+q\d+') + 16 * cnt(b, r'^stp\s+q\d+')
                    if cnt(b, r'^umull2?\s') and cnt(b, r'^uzp2\s') else 0, 'element'),
    # int8 codes: 8 per d register stored, 16 per q register, 32 per stp of two q.
    'softmax_out': ('nonlinear_neon.c', r'softmax', lambda b: 8 * cnt(b, r'^(str|stur)\s+d\d+')
                    + 16 * cnt(b, r'^(str|stur)\s+q\d+') + 32 * cnt(b, r'^stp\s+q\d+')
                    if cnt(b, r'^sqrdmulh\s') else 0, 'element'),
    'layernorm_stats': ('nonlinear_neon.c', r'layernorm', lambda b: 8 * cnt(b, r'^smull2?\s')
                        if not cnt(b, r'^(str|stur)\s+d\d+') else 0, 'element'),
    'layernorm_out': ('nonlinear_neon.c', r'layernorm', lambda b: 8 * cnt(b, r'^(str|stur)\s+d\d+') + 16 * cnt(b, r'^(str|stur)\s+q\d+')
                      if cnt(b, r'^mla\s') else 0, 'element'),
    # The activation table (SiLU etc.) applied after a GEMM or depthwise tile: a loop of its own.
    'lut': ('gemm_neon.c', r'gemm_neon', lambda b: cnt(b, r'^strb\s') if cnt(b, r'^ldrb\s') and len(b) < 16 else 0, 'element'),
    'add': ('nonlinear_neon.c', r'mv_add_rows', lambda b: 8 * cnt(b, r'^(str|stur)\s+d\d+') + 16 * cnt(b, r'^(str|stur)\s+q\d+')
            if cnt(b, r'^smlal2?\s') else 0, 'element'),
}
# GEMM tiles (include/mv_int8.h): MR x NR outputs, K padded to 16.
TILES = {'gemm_neon': (2, 8), 'gemm_neon_bmin': (2, 8), 'gemm_neondot': (4, 16), 'gemm_vnni': (8, 16)}

X86 = {
    'gemm_vnni': ('gemm_avx512vnni.c', r'gemm_q8_avx512vnni',
                  lambda b: 64 * cnt(b, r'^vpdpbusd\s.*zmm') + 32 * cnt(b, r'^vpdpbusd\s.*ymm'), 'MAC'),
    # 5 vpmaddwd per 16-channel pixel (taps in pairs, the last paired with zero): 144 MACs
    'dwconv': ('dwconv_avx2.c', r'mv_dw3x3_avx2', lambda b: 144 * cnt(b, r'^vpmaddwd\s.*ymm') // 10, 'MAC'),
    'softmax_max': ('nonlinear_avx2.c', r'softmax', lambda b: 8 * cnt(b, r'^vpmaxsd\s.*ymm')
                    if not cnt(b, r'^vpmul') else 0, 'element'),
    # 16 e (uint16) per ymm store; 32 int8 outputs per ymm store.
    'softmax_exp': ('nonlinear_avx2.c', r'softmax', lambda b: 16 * cnt(b, r'^vmovdq[ua]\s+%ymm\d+, (?!.*%rsp).*\(')
                    if cnt(b, r'^vpmulld\s') else 0, 'element'),
    'softmax_out': ('nonlinear_avx2.c', r'softmax', lambda b: 32 * cnt(b, r'^vmovdq[ua]\s+%ymm\d+, (?!.*%rsp).*\(')
                    if cnt(b, r'^vpmulhrsw\s') and not cnt(b, r'^vpmulld\s') else 0, 'element'),
    'layernorm_stats': ('nonlinear_avx2.c', r'layernorm', lambda b: 16 * cnt(b, r'^vpmovsxbw\s')
                        if cnt(b, r'^vpmaddwd\s') else 0, 'element'),
    'layernorm_out': ('nonlinear_avx2.c', r'layernorm', lambda b: 8 * cnt(b, r'^(v?movq)\s+%[rx]\w+, (?!.*%rsp)-?\w*\(')
                      if cnt(b, r'^vpsravd\s') else 0, 'element'),
    'add': ('nonlinear_avx2.c', r'mv_add_rows', lambda b: 16 * cnt(b, r'^vmovdq[ua]\s+%xmm\d+, (?!.*%rsp).*\(')
            + 32 * cnt(b, r'^vmovdq[ua]\s+%ymm\d+, (?!.*%rsp).*\(') if cnt(b, r'^vpmaddwd\s') else 0, 'element'),
}


# ---------------------------------------------------------------------------------------------
# Assembly: blocks with LLVM's loop annotations.

def compile_asm(src, target, workdir):
    clang = os.environ.get('CLANG') or ('/opt/swift/usr/bin/clang' if os.path.exists('/opt/swift/usr/bin/clang') else 'clang')
    inc = os.path.join(workdir, 'inc')
    os.makedirs(inc, exist_ok=True)
    # No aarch64 sysroot is needed: freestanding headers, and the kernels use only memcpy/memset of
    # <string.h>, kept as the compiler builtins they are in a hosted build.
    with open(os.path.join(inc, 'string.h'), 'w') as f:
        f.write('#pragma once\n#include <stddef.h>\n#define memcpy(d, s, n) __builtin_memcpy(d, s, n)\n'
                '#define memset(d, c, n) __builtin_memset(d, c, n)\n')
    hosted = target.startswith('x86_64') and os.path.exists('/usr/include/string.h')
    flags = [] if hosted else ['-ffreestanding', '-isystem', inc]
    out = os.path.join(workdir, os.path.basename(src) + '.' + target.split('-')[0] + '.s')
    subprocess.run([clang, '--target=' + target, '-O2', '-S', *flags,
                    '-I', os.path.join(KSRC, 'include'), '-o', out, src], check=True)
    return out


LABEL = re.compile(r'^([.\w$]+):\s*(?:(?://|#)\s*(.*))?$')
BBC = re.compile(r'^(?://|#) %bb\.(\d+):\s*(?:(?://|#)\s*(.*))?$')
CALL = re.compile(r'^(bl|blr|call|callq)\s')


def parse_blocks(path):
    blocks, fn, cur = [], None, None
    for raw in open(path):
        line = raw.rstrip('\n')
        s = line.strip()
        if not s:
            continue
        m = BBC.match(s)
        lm = None if line[:1] in (' ', '\t') else LABEL.match(line)
        if m or lm:
            if m:
                name, note = '%bb.' + m.group(1), m.group(2) or ''
            else:
                name, note = lm.group(1), lm.group(2) or ''
                if not name.startswith('.L'):
                    fn = name
                elif not name.startswith('.LBB'):
                    cur = None  # constant pools, jump tables
                    continue
            cur = dict(fn=fn, name=name.replace('.LBB', 'BB'), notes=[note], insns=[])
            blocks.append(cur)
            continue
        if s.startswith(('//', '#')):
            if cur is not None and not cur['insns']:
                cur['notes'].append(s.lstrip('/#').strip())
            continue
        if cur is None or s.startswith('.'):
            continue
        cur['insns'].append(re.split(r'\s(?://|#)', s)[0].strip())
    for b in blocks:
        note = ' '.join(b['notes'])
        b['header'], b['parent'] = None, None
        if 'This' in note and 'Loop Header' in note:
            b['header'] = b['name']
            parents = re.findall(r'Parent Loop (\S+)', note)
            b['parent'] = parents[-1] if parents else None
        else:
            m = re.search(r'in Loop: Header=(\S+)', note)
            b['header'] = m.group(1) if m else None
    return blocks


def loop_body(blocks, header):
    """The loop's own blocks in layout order, leaving out nested loops and blocks with calls."""
    own = [b for b in blocks if b['header'] == header]
    return [i for b in own if not any(CALL.match(x) for x in b['insns']) for i in b['insns']]


def find_loop(blocks, fn_re, work):
    """The loop of a function doing the most work per iteration; of a loop and a loop nested in
    it that both qualify, the nested one (a tile loop's own blocks may hold an inlined tail step)."""
    heads = {b['name']: b for b in blocks if b['header'] == b['name']}
    cands = {}
    for h, hb in heads.items():
        if not re.search(fn_re, hb['fn'] or ''):
            continue
        body = loop_body(blocks, h)
        w = work(body)
        if w > 0:
            cands[h] = (h, w, body, hb['fn'])
    ancestors = set()
    for h in cands:
        p = heads[h]['parent']
        while p:
            ancestors.add(p)
            p = heads[p]['parent'] if p in heads else None
    best = None
    for h, c in cands.items():
        if h in ancestors:
            continue
        if best is None or c[1] > best[1] or (c[1] == best[1] and len(c[2]) < len(best[2])):
            best = c
    return best


def mca(body, mcpu, triple, workdir, name):
    mcapath = os.environ.get('LLVM_MCA') or shutil.which('llvm-mca') or 'llvm-mca'
    path = os.path.join(workdir, f'{name}.{mcpu}.s')
    with open(path, 'w') as f:
        f.write('\n'.join(body) + '\n')
    attr = ['-mattr=+dotprod'] if triple.startswith('aarch64') else []
    r = subprocess.run([mcapath, f'-mtriple={triple}', f'-mcpu={mcpu}', *attr, '-iterations=200', path],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f'llvm-mca failed on {name} ({mcpu}):\n{r.stderr[:2000]}')
    total = float(re.search(r'Total Cycles:\s+(\d+)', r.stdout).group(1))
    iters = float(re.search(r'Iterations:\s+(\d+)', r.stdout).group(1))
    rthr = float(re.search(r'Block RThroughput:\s+([\d.]+)', r.stdout).group(1))
    return max(total / iters, rthr), rthr, total / iters


def kernel_costs(families, triple, mcpus, workdir):
    """{mcpu: {family: dict(cycles per unit, ...)}} and a description of each loop."""
    asm, out = {}, {m: {} for m in mcpus}
    for fam, (src, fn_re, work, unit) in families.items():
        if src not in asm:
            s = compile_asm(os.path.join(KSRC, src), triple, workdir)
            asm[src] = parse_blocks(s)
        blocks = asm[src]
        found = find_loop(blocks, fn_re, work)
        if not found:
            raise SystemExit(f'pi_estimate: no loop for {fam} in {src} (the kernel changed? update the work counter)')
        header, units, body, fn = found
        tile = None
        if fam in TILES:
            hb = next(b for b in blocks if b['name'] == header)
            if hb['parent']:  # the tile loop's own blocks, less any inlined K-tail step (K is padded instead)
                tile = [i for b in blocks if b['header'] == hb['parent'] and not ksteps(b['insns'])
                        and not any(CALL.match(x) for x in b['insns']) for i in b['insns']]
        for m in mcpus:
            cyc, rthr, sim = mca(body, m, triple, workdir, fam)
            d = dict(file=src, function=fn, loop=header, instructions=len(body), units_per_iteration=units,
                     unit=unit, cycles_per_iteration=cyc, block_rthroughput=rthr, simulated_cycles_per_iteration=sim,
                     cycles_per_unit=cyc / units)
            if tile:
                tc, _, _ = mca(tile, m, triple, workdir, fam + '_tile')
                d.update(tile_loop_instructions=len(tile), cycles_per_tile=tc)
            out[m][fam] = d
    return out


# ---------------------------------------------------------------------------------------------
# Layers -> work -> time.

def rup(x, m):
    return (x + m - 1) // m * m


def gemm_cycles(k, fam, m, n, kk, count=1):
    """Cycles of `count` GEMMs M x N x K with the family's tiles (K padded to 16)."""
    mr, nr = TILES[fam]
    c = k[fam]
    macs = rup(m, mr) * rup(n, nr) * rup(kk, 16)
    tiles = (rup(m, mr) // mr) * (rup(n, nr) // nr)
    return count * (macs * c['cycles_per_unit'] + tiles * c.get('cycles_per_tile', 0.0))


COPY_BYTES_PER_CYCLE = 16.0  # im2col rows and attention B packing: assumed memcpy rate (one 128-bit load + store per cycle)


def layer_work(layer, prev_elems, k, cpu, x86=False):
    """(compute cycles, bytes moved) of one inspect row."""
    kind, shape, macs, params = layer['kind'], layer['output_shape'], layer['macs'], layer['parameters']
    out = math.prod(shape)
    gemm = 'gemm_vnni' if x86 else ('gemm_neondot' if cpu['isa'] == 'neondot' else 'gemm_neon')
    gemm_act = 'gemm_vnni' if x86 else ('gemm_neondot' if cpu['isa'] == 'neondot' else 'gemm_neon_bmin')
    elem = lambda fam: k[fam]['cycles_per_unit']  # noqa: E731
    m = re.match(r'(conv|depthwise) (\d+)×\d+/(\d+)', kind)
    act = re.search(r'\+ (\w+)$', kind)
    # A table activation (all but ReLU, which is the clamp) costs the LUT loop per output element.
    lut = out * k['lut']['cycles_per_unit'] if act and act.group(1) != 'relu' and 'lut' in k else 0.0
    if kind.startswith('conv 1×1 classifier') or (m and m.group(1) == 'conv'):
        ksz, stride = (1, 1) if not m else (int(m.group(2)), int(m.group(3)))
        pix = math.prod(shape[:-1]) if len(shape) > 1 else 1
        cout = shape[-1]
        kk = macs // (pix * cout)
        cyc = gemm_cycles(k, gemm, pix, cout, kk)
        cin = kk // (ksz * ksz)
        if ksz > 1:
            if x86 and ksz == 3 and stride == 1 and 'dilation' not in kind and cin >= 16:
                cyc /= 2.25  # AVX2 Winograd F(2x2,3x3): 2.25x fewer multiplications (transforms not modelled)
            else:
                cyc += pix * kk / COPY_BYTES_PER_CYCLE  # im2col
        return cyc + lut, pix * stride * stride * cin + out + params
    if m and m.group(1) == 'depthwise':
        stride = int(m.group(3))
        pix, c = math.prod(shape[:-1]), shape[-1]

        cyc = pix * rup(c, 16) * 9 * k['dwconv']['cycles_per_unit']
        return cyc + lut, pix * stride * stride * c + out + params
    if kind.startswith('linear'):
        tokens = math.prod(shape[:-1]) if len(shape) > 1 else 1
        nout = shape[-1]
        kk = macs // (tokens * nout)
        return gemm_cycles(k, gemm, tokens, nout, kk) + lut, tokens * kk + out + params
    am = re.match(r'attention \((\d+) heads, (\d+)×(\d+) tokens\)', kind)
    if am:
        h, p, n = (int(x) for x in am.groups())
        d = shape[-1] // h
        cyc = gemm_cycles(k, gemm_act, n, n, d, p * h) + gemm_cycles(k, gemm_act, n, d, n, p * h)
        cyc += 2 * p * h * n * d / COPY_BYTES_PER_CYCLE  # packing K and V as GEMM B operands
        cyc += p * h * n * n * (elem('softmax_max') + elem('softmax_exp') + elem('softmax_out'))
        return cyc, 3 * out + out  # Q, K, V in, output; score blocks stay in L2
    if kind == 'add':
        return out * elem('add'), 3 * out
    if kind == 'layernorm':
        return out * (elem('layernorm_stats') + elem('layernorm_out')), 2 * out + params
    if kind in ('global average pool', 'bilinear resize'):
        n = prev_elems if kind == 'global average pool' else out
        return n * elem('add'), n + out
    raise SystemExit(f'pi_estimate: no cost rule for layer kind {kind!r} ({layer["name"]})')


def estimate(inspect, k, cpu, x86=False):
    """Rows named as `mvquant bench --layers` names them: [(tensor, ms, compute ms, memory ms)]."""
    h, w = inspect['input']
    dense = 'DeepLab' in inspect['architecture'] or 'segmentation' in inspect.get('kind', '').lower()
    hz, bw = cpu['ghz'] * 1e9, cpu['gbs'] * 1e9
    addc = k['add']['cycles_per_unit'] if x86 else k['add']['cycles_per_unit']
    rows = []

    def add_row(name, cyc, nbytes):
        rows.append([name, cyc / hz * 1e3, nbytes / bw * 1e3])

    add_row('input', 3 * h * w * addc, 3 * h * w * 5)  # float32 in, int8 out
    prev, carry = 3 * h * w, [0.0, 0.0]
    layers = inspect['layers']
    for i, layer in enumerate(layers):
        cyc, nbytes = layer_work(layer, prev, k, cpu, x86)
        prev = math.prod(layer['output_shape'])
        if layer['kind'] == 'bilinear resize':  # a layout operator in int8: charged to the next tensor
            carry = [carry[0] + cyc, carry[1] + nbytes]
            continue
        cyc, nbytes = cyc + carry[0], nbytes + carry[1]
        carry = [0.0, 0.0]
        name = layer['name']
        if i == len(layers) - 1:
            if dense:  # the label map: bilinear resize + argmax of the logits at the input size
                ncls = layer['output_shape'][-1]
                cyc += h * w * ncls * addc
                nbytes += h * w * 4
                name = 'logits and labels'
            else:
                name = 'logits'
        add_row(name, cyc, nbytes)
    return [(n, max(c, mm), c, mm) for n, c, mm in rows]


# ---------------------------------------------------------------------------------------------
# Output in the layout of `mvquant bench --layers` (BenchCommand.swift layerReport).

def strip(name):
    return name[len('mobilevit.'):] if name.startswith('mobilevit.') else name


def kind_of(name):
    parts = [p for p in name.split('.') if not p.isdigit()]
    last = parts[-1] if parts else name
    return 'residual add' if last == 'layer' else last


def table(rows, right=()):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return '\n'.join('  '.join(c.rjust(widths[i]) if i in right else c.ljust(widths[i])
                               for i, c in enumerate(r)).rstrip() for r in rows)


def layer_report(layers, ms_header='median ms'):
    total = sum(t for _, t in layers)
    rows = [['tensor', ms_header, 'share']]
    rows += [[strip(n), f'{t:.3f}', f'{100 * t / total:.1f}%'] for n, t in layers]
    by = collections.defaultdict(float)
    for n, t in layers:
        by[kind_of(n)] += t
    kinds = [['operator (by tensor name)', 'ms', 'share']]
    kinds += [[kd, f'{t:.3f}', f'{100 * t / total:.1f}%'] for kd, t in sorted(by.items(), key=lambda x: -x[1])]
    return f'per-layer medians (sum {total:.3f} ms):\n' + table(rows, {1, 2}) + '\n\n' + table(kinds, {1, 2})


def compare_report(est, measured):
    """Estimate and measurement side by side, aligned by tensor name (a tensor the other side does
    not report is charged to the next one both report)."""
    mnames = [x['tensor'] for x in measured]
    mt = {x['tensor']: x['median_ms'] for x in measured}
    enames = {n for n, _ in est}
    rows, carry = [], 0.0
    for n, t in est:
        carry += t
        if n in mt:
            rows.append((n, carry, mt[n]))
            carry = 0.0
    for n in mnames:
        if n not in enames:
            rows.append((n, float('nan'), mt[n]))
    te, tm = sum(r[1] for r in rows if r[1] == r[1]), sum(mt.values())
    out = [['tensor', 'estimate ms', 'measured ms', 'measured/estimate']]
    out += [[strip(n), f'{e:.3f}', f'{m:.3f}', f'{m / e:.2f}' if e and e == e else '-'] for n, e, m in rows]
    out.append(['total', f'{te:.3f}', f'{tm:.3f}', f'{tm / te:.2f}'])
    be, bm = collections.defaultdict(float), collections.defaultdict(float)
    for n, e, m in rows:
        if e == e:
            be[kind_of(n)] += e
        bm[kind_of(n)] += m
    kinds = [['operator (by tensor name)', 'estimate ms', 'measured ms', 'measured/estimate']]
    for kd in sorted(bm, key=lambda x: -bm[x]):
        kinds.append([kd, f'{be[kd]:.3f}', f'{bm[kd]:.3f}', f'{bm[kd] / be[kd]:.2f}' if be[kd] else '-'])
    return table(out, {1, 2, 3}) + '\n\n' + table(kinds, {1, 2, 3}), tm / te


def load_inspect(args, workdir):
    if args.inspect:
        return json.load(open(args.inspect))
    exe = args.mvquant or os.path.join(REPO, '.build', 'release', 'mvquant')
    out = os.path.join(workdir, 'inspect.json')
    cmd = [exe, 'inspect', '--model', args.model, '--json', out] + (['--size', args.size] if args.size else [])
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.load(open(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', help='.mvq file or float checkpoint directory (for mvquant inspect)')
    ap.add_argument('--size', help='HxW input size (default: the model\'s)')
    ap.add_argument('--inspect', help='use this `mvquant inspect --json` output instead of running inspect')
    ap.add_argument('--mvquant', help='the mvquant binary (default .build/release/mvquant)')
    ap.add_argument('--cpu', default='both', choices=['a72', 'a76', 'both'])
    ap.add_argument('--a72-ghz', type=float, default=CPUS['a72']['ghz'])
    ap.add_argument('--a76-ghz', type=float, default=CPUS['a76']['ghz'])
    ap.add_argument('--a72-gbs', type=float, default=CPUS['a72']['gbs'], help='assumed DRAM bandwidth, GB/s')
    ap.add_argument('--a76-gbs', type=float, default=CPUS['a76']['gbs'])
    ap.add_argument('--kernels', action='store_true', help='print the per-kernel cycle costs')
    ap.add_argument('--json', help='write the estimate as JSON')
    ap.add_argument('--compare', help='bench --layers --json output measured on the Pi: print both columns')
    ap.add_argument('--x86-check', metavar='BENCH.json',
                    help='sanity check on this x86 host: model the AVX-512 VNNI / AVX2 loops and compare with this bench JSON')
    ap.add_argument('--x86-mcpu', default='icelake-server')
    ap.add_argument('--x86-ghz', type=float, help='host clock (default: /proc/cpuinfo "cpu MHz")')
    ap.add_argument('--x86-gbs', type=float, default=10.0)
    args = ap.parse_args()
    if not args.model and not args.inspect:
        ap.error('--model or --inspect is needed')
    CPUS['a72'].update(ghz=args.a72_ghz, gbs=args.a72_gbs)
    CPUS['a76'].update(ghz=args.a76_ghz, gbs=args.a76_gbs)
    with tempfile.TemporaryDirectory(prefix='pi_estimate.') as wd:
        ins = load_inspect(args, wd)
        if args.x86_check:
            return x86_check(args, ins, wd)
        cpus = ['a72', 'a76'] if args.cpu == 'both' else [args.cpu]
        costs = kernel_costs(ARM, 'aarch64-linux-gnu', [CPUS[c]['mcpu'] for c in cpus], wd)
    report = dict(model=ins['model'], architecture=ins['architecture'], input=ins['input'], macs=ins['macs'],
                  estimate=True, method='llvm-mca cost model (Targets/README.md)', cpus={})
    if len(cpus) == 2:
        a, b = (costs[CPUS[c]['mcpu']] for c in cpus)
        if all(a[f]['cycles_per_iteration'] == b[f]['cycles_per_iteration'] for f in a):
            # LLVM 14 schedules cortex-a72, cortex-a76 (and neoverse-n1) with its Cortex-A57 model.
            report['note'] = ('this llvm-mca costs every loop the same on cortex-a72 and cortex-a76 (one scheduling '
                              'model for both: LLVM 14 uses its Cortex-A57 model); the A76 figures differ from the '
                              "A72's only by SDOT, clock and bandwidth")
            print('note: ' + report['note'] + '\n')
    measured = json.load(open(args.compare)) if args.compare else None
    h, w = ins['input']
    for c in cpus:
        cpu = CPUS[c]
        k = costs[cpu['mcpu']]
        rows = estimate(ins, k, cpu)
        total = sum(r[1] for r in rows)
        print(HEADER)
        print(f'{ins["architecture"]} int8, {h}×{w}, {cpu["title"]} at {cpu["ghz"]} GHz, 1 thread, '
              f'memory floor at {cpu["gbs"]} GB/s, kernels {cpu["isa"]}')
        print(f'latency ms: {total:.3f} (estimate)')
        print(f'throughput: {ins["macs"] / (total / 1000) / 1e9:.2f} GMAC/s ({ins["macs"] / 1e6:.1f} M MACs per image)')
        if args.kernels:
            for fam, d in k.items():
                extra = f', {d["cycles_per_tile"]:.1f} cycles per tile' if 'cycles_per_tile' in d else ''
                print(f'  kernel {fam:16s} {d["cycles_per_iteration"]:7.2f} cycles/iteration '
                      f'({d["units_per_iteration"]} {d["unit"]}s, {d["instructions"]} instructions, '
                      f'{d["file"]} loop {d["loop"]}) = {d["cycles_per_unit"]:.4f} cycles/{d["unit"]}{extra}')
        if measured:
            text, ratio = compare_report([(n, t) for n, t, _, _ in rows], measured.get('layers', []))
            print(f'measured: {measured.get("model")} ({measured.get("isa")}, {measured.get("threads")} thread(s)), '
                  f'median {measured.get("median_ms")} ms\n' + text)
        else:
            print(layer_report([(n, t) for n, t, _, _ in rows], 'est. ms'))
        print()
        report['cpus'][c] = dict(cpu=cpu['title'], mcpu=cpu['mcpu'], ghz=cpu['ghz'], bandwidth_gbs=cpu['gbs'],
                                 kernels=cpu['isa'], total_ms=total, kernel_costs=k,
                                 layers=[dict(tensor=n, ms=t, compute_ms=cc, memory_ms=mm) for n, t, cc, mm in rows])
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)
    return 0


def x86_check(args, ins, wd):
    """The same method on this host's x86 kernels, against this host's `bench --layers` figures."""
    ghz = args.x86_ghz
    if not ghz:
        mhz = [float(x) for x in re.findall(r'cpu MHz\s*:\s*([\d.]+)', open('/proc/cpuinfo').read())]
        ghz = max(mhz) / 1000 if mhz else 3.0
    costs = kernel_costs(X86, 'x86_64-linux-gnu', [args.x86_mcpu], wd)[args.x86_mcpu]
    for fam, d in costs.items():
        if 'unit' in d:
            print(f'  kernel {fam:10s} {d["cycles_per_iteration"]:7.2f} cycles/iteration ({d["units_per_iteration"]} '
                  f'{d["unit"]}s) = {d["cycles_per_unit"]:.4f} cycles/{d["unit"]}'
                  + (f', {d["cycles_per_tile"]:.1f} cycles per tile' if 'cycles_per_tile' in d else ''))
    cpu = dict(title='this x86 host', ghz=ghz, gbs=args.x86_gbs, isa='avx512vnni')
    rows = estimate(ins, costs, cpu, x86=True)

    bench = json.load(open(args.x86_check))

    print(f'x86 sanity check: {ins["architecture"]} {ins["input"][0]}×{ins["input"][1]}, {args.x86_mcpu} at {ghz:.2f} GHz, '
          f'bench {bench.get("isa")} {bench.get("threads")} thread(s)')
    text, ratio = compare_report([(n, t) for n, t, _, _ in rows], bench['layers'])
    print(text)
    print(f'measured/estimate, whole model: {ratio:.2f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
