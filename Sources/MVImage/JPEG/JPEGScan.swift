import MVFormats

/// Per-component values a scan's inner loops need, all plain (no reference counting).
private struct ScanComponent {
    var dc: JPEGHuffmanLookup?
    var ac: JPEGHuffmanLookup?
    let h: Int
    let v: Int
    let blocksW: Int
    let blocksH: Int
    let paddedBlocksW: Int
    let stride: Int
    let plane: UnsafeMutablePointer<UInt8>?
    let coefficients: UnsafeMutablePointer<Int16>?
    let quant: UnsafeMutablePointer<Int32>
}

/// Decodes the entropy-coded data of one scan (libjpeg's jdhuff.c and jdphuff.c in behaviour).
///
/// Baseline scans go straight through dequantisation and the IDCT into the component planes;
/// progressive scans accumulate quantised coefficients, transformed once all scans are in.
struct JPEGScanDecoder {
    let frame: JPEGFrame
    let components: [JPEGComponent]
    let dcTables: [JPEGHuffmanTable?]
    let acTables: [JPEGHuffmanTable?]
    let restartInterval: Int
    let policy: DamagePolicy
    var reader: JPEGBitReader
    var eobRun = 0

    init(frame: JPEGFrame, components: [JPEGComponent], dcTables: [JPEGHuffmanTable?], acTables: [JPEGHuffmanTable?],
         restartInterval: Int, policy: DamagePolicy, reader: JPEGBitReader)
    {
        self.policy = policy
        self.frame = frame
        self.components = components
        self.dcTables = dcTables
        self.acTables = acTables
        self.restartInterval = restartInterval
        self.reader = reader
    }

    /// Runs `body` with the scan's components in plain form; buffers live until it returns.
    private func withScanComponents<R>(needDC: Bool, needAC: Bool,
                                       _ body: (UnsafeMutableBufferPointer<ScanComponent>) throws -> R) throws -> R
    {
        let quants = UnsafeMutablePointer<Int32>.allocate(capacity: 64 * components.count)
        defer { quants.deallocate() }
        var list: [ScanComponent] = []
        for (i, c) in components.enumerated() {
            let q = quants + 64 * i
            let table = c.quant ?? [Int32](repeating: 1, count: 64)
            for k in 0..<64 { q[k] = table[k] }
            var dc: JPEGHuffmanLookup?
            var ac: JPEGHuffmanLookup?
            if needDC {
                guard let t = dcTables[c.dcTable] else { throw InputError("corrupt JPEG data: DC Huffman table \(c.dcTable) is not defined") }
                dc = t.lookup
            }
            if needAC {
                guard let t = acTables[c.acTable] else { throw InputError("corrupt JPEG data: AC Huffman table \(c.acTable) is not defined") }
                ac = t.lookup
            }
            list.append(ScanComponent(
                dc: dc, ac: ac, h: c.h, v: c.v, blocksW: c.blocksW, blocksH: c.blocksH,
                paddedBlocksW: c.paddedBlocksW, stride: c.stride,
                plane: c.plane?.base, coefficients: c.coefficients?.base, quant: q))
        }
        return try withExtendedLifetime((dcTables, acTables, components)) {
            try list.withUnsafeMutableBufferPointer { try body($0) }
        }
    }

    // MARK: Baseline

    mutating func decodeBaseline() throws {
        let block = UnsafeMutablePointer<Int32>.allocate(capacity: 64)
        block.initialize(repeating: 0, count: 64)
        let workspace = UnsafeMutablePointer<Int32>.allocate(capacity: 64)
        workspace.initialize(repeating: 0, count: 64)
        let natural = UnsafeMutablePointer<Int>.allocate(capacity: 80)
        natural.initialize(from: jpegNaturalOrder, count: 80)
        let range = UnsafeMutablePointer<UInt8>.allocate(capacity: 1024)
        range.initialize(from: JPEGIDCT.rangeLimit, count: 1024)
        let predictors = UnsafeMutablePointer<Int32>.allocate(capacity: 4)
        predictors.initialize(repeating: 0, count: 4)
        defer {
            block.deallocate(); workspace.deallocate(); natural.deallocate(); range.deallocate(); predictors.deallocate()
        }
        try withScanComponents(needDC: true, needAC: true) { sc in
            try forEachBlockBaseline(sc, predictors: predictors) { r, ci, row, col in
                let c = sc[ci]
                guard let dc = c.dc, let ac = c.ac, let plane = c.plane else { return }
                let hasAC = try Self.decodeBlock(&r, dc: dc, ac: ac, predictor: &predictors[ci], quant: c.quant,
                                                 natural: natural, block: block)
                let out = plane + row * 8 * c.stride + col * 8
                if hasAC {
                    JPEGIDCT.transform(block, out, stride: c.stride, workspace: workspace, range: range)
                    block.update(repeating: 0, count: 64)
                } else {
                    JPEGIDCT.transformDCOnly(block[0], out, stride: c.stride, range: range)
                    block[0] = 0
                }
            }
        }
    }

    /// Visits every block of a baseline scan in stream order, handling restart markers (which
    /// reset the DC predictors): `block` receives the component's index in the scan and the
    /// block's row and column in the component.
    @inline(__always)
    private mutating func forEachBlockBaseline(_ comps: UnsafeMutableBufferPointer<ScanComponent>,
                                               predictors: UnsafeMutablePointer<Int32>,
                                               _ block: (inout JPEGBitReader, Int, Int, Int) throws -> Void) throws
    {
        let single = comps.count == 1
        let mcuRows = single ? comps[0].blocksH : frame.mcusY
        let mcuCols = single ? comps[0].blocksW : frame.mcusX
        // A local copy of the reader lets its state live in registers in the loop.
        var r = reader
        defer { reader = r }
        var restartsLeft = restartInterval
        for my in 0..<mcuRows {
            for mx in 0..<mcuCols {
                if restartInterval > 0 {
                    if restartsLeft == 0 {
                        try r.restart(policy: policy)
                        predictors.update(repeating: 0, count: 4)
                        restartsLeft = restartInterval
                    }
                    restartsLeft -= 1
                }
                if single {
                    try block(&r, 0, my, mx)
                } else {
                    for ci in 0..<comps.count {
                        let c = comps[ci]
                        for by in 0..<c.v {
                            for bx in 0..<c.h {
                                try block(&r, ci, my * c.v + by, mx * c.h + bx)
                            }
                        }
                    }
                }
            }
            try r.checkDamage(policy: policy)
        }
    }

    /// One baseline block: DC difference and AC run/size codes, dequantised into `block`
    /// (natural order, which must be zero on entry). Returns whether any AC coefficient was
    /// coded, so a DC-only block can skip the full IDCT.
    @inline(__always)
    private static func decodeBlock(_ r: inout JPEGBitReader, dc: JPEGHuffmanLookup, ac: JPEGHuffmanLookup,
                                    predictor: inout Int32, quant: UnsafePointer<Int32>,
                                    natural: UnsafePointer<Int>, block: UnsafeMutablePointer<Int32>) throws -> Bool
    {
        let symbol = try r.decode(dc)
        let t = symbol <= 15 ? symbol : try r.badData("bad DC coefficient size (above 15)")
        predictor = predictor &+ Int32(truncatingIfNeeded: r.receiveExtend(t))
        block[0] = Int32(Int16(truncatingIfNeeded: predictor)) &* quant[0]
        var hasAC = false
        var k = 1
        while k < 64 {
            if r.count < 32 { r.refill() }
            let fast = ac.fastAC[Int(truncatingIfNeeded: r.buffer &>> UInt64(64 - JPEGHuffmanTable.fastBits))]
            if fast != 0 {
                let length = Int(fast & 0xFF)
                r.buffer = r.buffer &<< UInt64(length)
                r.count -= length
                k += Int((fast >> 8) & 0xFF)
                let z = natural[k]
                block[z] = Int32(fast >> 16) &* quant[z]
                hasAC = true
                k += 1
                continue
            }
            let rs = try r.decode(ac)
            let run = rs >> 4
            let size = rs & 15
            if size == 0 {
                if run != 15 { break }
                k += 16
                continue
            }
            k += run
            let z = natural[k]
            block[z] = Int32(Int16(truncatingIfNeeded: r.receiveExtend(size))) &* quant[z]
            hasAC = true
            k += 1
        }
        return hasAC
    }

    // MARK: Progressive

    mutating func decodeProgressive(ss: Int, se: Int, ah: Int, al: Int) throws {
        let predictors = UnsafeMutablePointer<Int32>.allocate(capacity: 4)
        predictors.initialize(repeating: 0, count: 4)
        let natural = UnsafeMutablePointer<Int>.allocate(capacity: 80)
        natural.initialize(from: jpegNaturalOrder, count: 80)
        defer { predictors.deallocate(); natural.deallocate() }
        eobRun = 0
        let isDC = ss == 0
        try withScanComponents(needDC: isDC && ah == 0, needAC: !isDC) { sc in
            try forEachBlockProgressive(sc, predictors: predictors) { r, eob, ci, row, col in
                let c = sc[ci]
                guard let coefs = c.coefficients else { return }
                let block = coefs + (row * c.paddedBlocksW + col) * 64
                if isDC {
                    if ah == 0 {
                        guard let dc = c.dc else { return }
                        let symbol = try r.decode(dc)
                        let t = symbol <= 15 ? symbol : try r.badData("bad DC coefficient size (above 15)")
                        predictors[ci] = predictors[ci] &+ Int32(truncatingIfNeeded: r.receiveExtend(t))
                        block[0] = Int16(truncatingIfNeeded: Int(predictors[ci]) << al)
                    } else if r.bit() != 0 {
                        block[0] |= Int16(truncatingIfNeeded: 1 << al)
                    }
                } else if let ac = c.ac {
                    if ah == 0 {
                        try Self.decodeACFirst(&r, ac: ac, block: block, eobRun: &eob, ss: ss, se: se, al: al, natural: natural)
                    } else {
                        try Self.decodeACRefine(&r, ac: ac, block: block, eobRun: &eob, ss: ss, se: se, al: al, natural: natural)
                    }
                }
            }
        }
    }

    /// `forEachBlockBaseline` for progressive scans, whose restarts also end any EOB run.
    @inline(__always)
    private mutating func forEachBlockProgressive(_ comps: UnsafeMutableBufferPointer<ScanComponent>,
                                                  predictors: UnsafeMutablePointer<Int32>,
                                                  _ block: (inout JPEGBitReader, inout Int, Int, Int, Int) throws -> Void) throws
    {
        let single = comps.count == 1
        let mcuRows = single ? comps[0].blocksH : frame.mcusY
        let mcuCols = single ? comps[0].blocksW : frame.mcusX
        // A local copy of the reader lets its state live in registers in the loop.
        var r = reader
        defer { reader = r }
        var restartsLeft = restartInterval
        for my in 0..<mcuRows {
            for mx in 0..<mcuCols {
                if restartInterval > 0 {
                    if restartsLeft == 0 {
                        try r.restart(policy: policy)
                        predictors.update(repeating: 0, count: 4)
                        eobRun = 0
                        restartsLeft = restartInterval
                    }
                    restartsLeft -= 1
                }
                if single {
                    try block(&r, &eobRun, 0, my, mx)
                } else {
                    for ci in 0..<comps.count {
                        let c = comps[ci]
                        for by in 0..<c.v {
                            for bx in 0..<c.h {
                                try block(&r, &eobRun, ci, my * c.v + by, mx * c.h + bx)
                            }
                        }
                    }
                }
            }
            try r.checkDamage(policy: policy)
        }
    }

    /// First pass over a band of AC coefficients (G.1.2.2), with end-of-band runs.
    @inline(__always)
    private static func decodeACFirst(_ r: inout JPEGBitReader, ac: JPEGHuffmanLookup, block: UnsafeMutablePointer<Int16>,
                                      eobRun: inout Int, ss: Int, se: Int, al: Int, natural: UnsafePointer<Int>) throws
    {
        if eobRun > 0 {
            eobRun -= 1
            return
        }
        var k = ss
        while k <= se {
            let rs = try r.decode(ac)
            let run = rs >> 4
            let size = rs & 15
            if size != 0 {
                k += run
                block[natural[k]] = Int16(truncatingIfNeeded: r.receiveExtend(size) << al)
            } else {
                if run < 15 {
                    eobRun = (1 << run) + r.bits(run) - 1
                    break
                }
                k += 15
            }
            k += 1
        }
    }

    /// Refinement pass over a band of AC coefficients (G.1.2.3): one more bit of every
    /// coefficient already non-zero, and newly non-zero coefficients of magnitude 1 << al.
    @inline(__always)
    private static func decodeACRefine(_ r: inout JPEGBitReader, ac: JPEGHuffmanLookup, block: UnsafeMutablePointer<Int16>,
                                       eobRun: inout Int, ss: Int, se: Int, al: Int, natural: UnsafePointer<Int>) throws
    {
        let plus = Int16(truncatingIfNeeded: 1 << al)
        let minus = Int16(truncatingIfNeeded: -1 << al)
        var k = ss
        if eobRun == 0 {
            while k <= se {
                let rs = try r.decode(ac)
                var run = rs >> 4
                let size = rs & 15
                var value: Int16 = 0
                if size != 0 {
                    // Only size 1 is valid here; libjpeg reads the sign bit regardless.
                    value = r.bit() != 0 ? plus : minus
                } else if run != 15 {
                    eobRun = 1 << run
                    if run > 0 { eobRun += r.bits(run) }
                    break
                }
                // Skip `run` zero coefficients, refining the non-zero ones passed on the way.
                while k <= se {
                    let z = natural[k]
                    let coef = block[z]
                    if coef != 0 {
                        if r.bit() != 0, coef & plus == 0 {
                            block[z] = coef >= 0 ? coef &+ plus : coef &+ minus
                        }
                    } else {
                        if run == 0 { break }
                        run -= 1
                    }
                    k += 1
                }
                if value != 0, k <= se {
                    block[natural[k]] = value
                }
                k += 1
            }
        }
        if eobRun > 0 {
            // Inside an end-of-band run: only refinement bits of the non-zero coefficients.
            while k <= se {
                let z = natural[k]
                let coef = block[z]
                if coef != 0, r.bit() != 0, coef & plus == 0 {
                    block[z] = coef >= 0 ? coef &+ plus : coef &+ minus
                }
                k += 1
            }
            eobRun -= 1
        }
    }

    /// After the last scan of a progressive image: dequantise and transform every block of a
    /// component into its sample plane.
    static func inverseTransformAll(_ c: JPEGComponent) throws {
        guard let coefs = c.coefficients else { return }
        let plane = try ZeroedBuffer<UInt8>(count: c.paddedBlocksW * c.paddedBlocksH * 64, what: "JPEG samples")
        let quant = c.quant ?? [Int32](repeating: 1, count: 64)
        let block = UnsafeMutablePointer<Int32>.allocate(capacity: 64)
        let workspace = UnsafeMutablePointer<Int32>.allocate(capacity: 64)
        let range = UnsafeMutablePointer<UInt8>.allocate(capacity: 1024)
        range.initialize(from: JPEGIDCT.rangeLimit, count: 1024)
        defer { block.deallocate(); workspace.deallocate(); range.deallocate() }
        let stride = c.stride
        quant.withUnsafeBufferPointer { q in
            for row in 0..<c.blocksH {
                for col in 0..<c.blocksW {
                    let src = coefs.base + (row * c.paddedBlocksW + col) * 64
                    let out = plane.base + row * 8 * stride + col * 8
                    var acZero = true
                    for k in 1..<64 where src[k] != 0 { acZero = false; break }
                    if acZero {
                        JPEGIDCT.transformDCOnly(Int32(src[0]) &* q[0], out, stride: stride, range: range)
                        continue
                    }
                    for k in 0..<64 { block[k] = Int32(src[k]) &* q[k] }
                    JPEGIDCT.transform(block, out, stride: stride, workspace: workspace, range: range)
                }
            }
        }
        c.plane = plane
    }
}
