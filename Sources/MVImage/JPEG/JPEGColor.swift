/// Turns decoded component planes into RGB: chroma upsampling as libjpeg-turbo's jdsample.c
/// does it with fancy upsampling on (triangle filters for 2:1 ratios, replication otherwise),
/// then colour conversion with libjpeg's fixed-point tables, and Pillow's CMYK handling.
enum JPEGColorConverter {
    /// libjpeg's YCbCr→RGB tables (jdcolor.c): 16 fractional bits, FIX(x) = round(x·2^16).
    struct YCbCrTables {
        var crToR = [Int32](repeating: 0, count: 256)
        var cbToB = [Int32](repeating: 0, count: 256)
        var crToG = [Int32](repeating: 0, count: 256)
        var cbToG = [Int32](repeating: 0, count: 256)

        init() {
            let half = 1 << 15
            for i in 0..<256 {
                let x = i - 128
                crToR[i] = Int32((91881 * x + half) >> 16)      // FIX(1.40200)
                cbToB[i] = Int32((116130 * x + half) >> 16)     // FIX(1.77200)
                crToG[i] = Int32(-46802 * x)                    // -FIX(0.71414)
                cbToG[i] = Int32(-22554 * x + half)             // -FIX(0.34414), rounding folded in
            }
        }
    }

    static let tables = YCbCrTables()

    /// clamp(i − 384) to 0…255 for i in 0..<1024: a branch-free clamp for converted samples,
    /// which lie in −227…482 (the role of libjpeg's range_limit table).
    static let clampTable: [UInt8] = (0..<1024).map { UInt8(min(max($0 - 384, 0), 255)) }

    static func convert(frame: JPEGFrame, colorSpace: JPEGColorSpace) -> RGBImage {
        let width = frame.width
        let height = frame.height
        let comps = frame.components
        let n = comps.count
        // Upsampled rows may run past the image width (up to a whole group of samples).
        let rowCapacity = (comps.map { $0.width * $0.ratioH }.max() ?? width) + 8
        let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: rowCapacity * n)
        let rows = UnsafeMutablePointer<UnsafePointer<UInt8>>.allocate(capacity: n)
        defer { scratch.deallocate(); rows.deallocate() }
        let planes = comps.map { $0.plane }
        let emptyPlane = [UInt8](repeating: 0, count: rowCapacity)

        let pixels = [UInt8](unsafeUninitializedCapacity: width * height * 3) { out, done in
            // The frame header guarantees a non-empty image, so the buffer has an address.
            guard let base = out.baseAddress else { return }
            let t = tables
            t.crToR.withUnsafeBufferPointer { crR in
            t.cbToB.withUnsafeBufferPointer { cbB in
            t.crToG.withUnsafeBufferPointer { crG in
            t.cbToG.withUnsafeBufferPointer { cbG in
            emptyPlane.withUnsafeBufferPointer { empty in
            clampTable.withUnsafeBufferPointer { clampBuffer in
                // Offset so that clip[v] is valid for v in −384…639; masking keeps any index
                // inside the table.
                let clip = { (v: Int32) -> UInt8 in clampBuffer[Int(truncatingIfNeeded: v &+ 384) & 1023] }
                for y in 0..<height {
                    for ci in 0..<n {
                        if let plane = planes[ci] {
                            rows[ci] = upsampledRow(comps[ci], plane: plane.base, y: y, scratch: scratch + ci &* rowCapacity)
                        } else {
                            rows[ci] = empty.baseAddress ?? UnsafePointer(scratch)
                        }
                    }
                    let o = base + y &* width &* 3
                    switch colorSpace {
                    case .grey:
                        let g = rows[0]
                        for x in 0..<width {
                            let v = g[x]
                            o[3 &* x] = v; o[3 &* x &+ 1] = v; o[3 &* x &+ 2] = v
                        }
                    case .rgb:
                        let r = rows[0], g = rows[1], b = rows[2]
                        for x in 0..<width {
                            o[3 &* x] = r[x]; o[3 &* x &+ 1] = g[x]; o[3 &* x &+ 2] = b[x]
                        }
                    case .yCbCr:
                        let yy = rows[0], cb = rows[1], cr = rows[2]
                        let vectorEnd = width & ~7
                        yCbCrToRGB8(yy, cb, cr, count: vectorEnd, out: o)
                        for x in vectorEnd..<width {
                            let l = Int32(yy[x])
                            let b = Int(cb[x]), r = Int(cr[x])
                            o[3 &* x] = clip(l &+ crR[r])
                            o[3 &* x &+ 1] = clip(l &+ ((cbG[b] &+ crG[r]) >> 16))
                            o[3 &* x &+ 2] = clip(l &+ cbB[b])
                        }
                    case .cmyk, .yCCK:
                        let p0 = rows[0], p1 = rows[1], p2 = rows[2], p3 = rows[3]
                        for x in 0..<width {
                            var c = p0[x], m = p1[x], ye = p2[x]
                            if colorSpace == .yCCK {
                                // libjpeg's YCCK→CMYK: YCbCr→RGB, then each inverted.
                                let l = Int32(p0[x])
                                let b = Int(p1[x]), r = Int(p2[x])
                                c = 255 - clip(l &+ crR[r])
                                m = 255 - clip(l &+ ((cbG[b] &+ crG[r]) >> 16))
                                ye = 255 - clip(l &+ cbB[b])
                            }
                            let (r, g, b) = pillowCMYKToRGB(c, m, ye, p3[x])
                            o[3 &* x] = r; o[3 &* x &+ 1] = g; o[3 &* x &+ 2] = b
                        }
                    }
                }
            }}}}}}
            done = width * height * 3
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// The same conversion as the tables, eight pixels at a time in vector registers:
    /// R = Y + ⌊(91881·Cr′ + 2^15) / 2^16⌋, G = Y + ⌊(−22554·Cb′ − 46802·Cr′ + 2^15) / 2^16⌋,
    /// B = Y + ⌊(116130·Cb′ + 2^15) / 2^16⌋ with Cb′ = Cb − 128, Cr′ = Cr − 128, clamped.
    /// `count` must be a multiple of 8.
    @inline(__always)
    static func yCbCrToRGB8(_ y: UnsafePointer<UInt8>, _ cb: UnsafePointer<UInt8>, _ cr: UnsafePointer<UInt8>,
                            count: Int, out: UnsafeMutablePointer<UInt8>)
    {
        let half = SIMD8<Int32>(repeating: 1 << 15)
        let lo = SIMD8<Int32>(repeating: 0)
        let hi = SIMD8<Int32>(repeating: 255)
        var x = 0
        while x < count {
            let l = SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(y + x).loadUnaligned(as: SIMD8<UInt8>.self))
            let b = SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(cb + x).loadUnaligned(as: SIMD8<UInt8>.self)) &- 128
            let r = SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(cr + x).loadUnaligned(as: SIMD8<UInt8>.self)) &- 128
            var red = l &+ ((r &* 91881 &+ half) &>> 16)
            var green = l &+ ((b &* -22554 &+ r &* -46802 &+ half) &>> 16)
            var blue = l &+ ((b &* 116130 &+ half) &>> 16)
            red = red.clamped(lowerBound: lo, upperBound: hi)
            green = green.clamped(lowerBound: lo, upperBound: hi)
            blue = blue.clamped(lowerBound: lo, upperBound: hi)
            let o = out + 3 &* x
            for i in 0..<8 {
                o[3 &* i] = UInt8(truncatingIfNeeded: red[i])
                o[3 &* i &+ 1] = UInt8(truncatingIfNeeded: green[i])
                o[3 &* i &+ 2] = UInt8(truncatingIfNeeded: blue[i])
            }
            x &+= 8
        }
    }

    @inline(__always)
    static func clamp(_ v: Int32) -> UInt8 {
        UInt8(truncatingIfNeeded: min(max(v, 0), 255))
    }

    /// Pillow reads CMYK JPEGs as Adobe-inverted ("CMYK;I") and converts CMYK to RGB as
    /// R = (255 − K) − (C·(255 − K))/255 with its rounded division by 255; in terms of the
    /// stored (inverted) samples that is R = k − (255 − c)·k/255.
    @inline(__always)
    static func pillowCMYKToRGB(_ c: UInt8, _ m: UInt8, _ y: UInt8, _ k: UInt8) -> (UInt8, UInt8, UInt8) {
        let nk = Int(k)  // 255 − (255 − k)
        func channel(_ stored: UInt8) -> UInt8 {
            let inverted = 255 - Int(stored)
            let t = inverted * nk + 128
            let product = ((t >> 8) + t) >> 8
            return UInt8(truncatingIfNeeded: min(max(nk - product, 0), 255))
        }
        return (channel(c), channel(m), channel(y))
    }

    /// Row `y` of component `c` at full resolution: the plane row itself, or an upsampled
    /// copy in `scratch`.
    static func upsampledRow(_ c: JPEGComponent, plane: UnsafeMutablePointer<UInt8>, y: Int,
                             scratch: UnsafeMutablePointer<UInt8>) -> UnsafePointer<UInt8>
    {
        let stride = c.stride
        let w = c.width
        switch (c.ratioH, c.ratioV) {
        case (1, 1):
            return UnsafePointer(plane + y &* stride)
        case (2, 1) where w > 2:
            h2v1(UnsafePointer(plane + y &* stride), width: w, out: scratch)
        case (1, 2):
            // Vertical triangle filter: 3/4 nearer row + 1/4 further row, libjpeg's biases.
            let cy = y >> 1
            let upper = y & 1 == 0
            let near = plane + cy &* stride
            let far = plane + (upper ? max(cy &- 1, 0) : min(cy &+ 1, c.height &- 1)) &* stride
            let bias = upper ? 1 : 2
            for x in 0..<w {
                scratch[x] = UInt8(truncatingIfNeeded: (3 &* Int(near[x]) &+ Int(far[x]) &+ bias) >> 2)
            }
        case (2, 2) where w > 2:
            let cy = y >> 1
            let upper = y & 1 == 0
            let near = plane + cy &* stride
            let far = plane + (upper ? max(cy &- 1, 0) : min(cy &+ 1, c.height &- 1)) &* stride
            h2v2(near, far, width: w, out: scratch)
        default:
            // Plain replication (libjpeg's int_upsample and the narrow-image cases).
            let src = plane + (y / c.ratioV) &* stride
            let rh = c.ratioH
            var x = 0
            for i in 0..<w {
                let v = src[i]
                for _ in 0..<rh {
                    scratch[x] = v
                    x += 1
                }
            }
        }
        return UnsafePointer(scratch)
    }

    /// Horizontal 2:1 triangle filter (jdsample.c h2v1_fancy_upsample); needs width > 2.
    @inline(__always)
    static func h2v1(_ src: UnsafePointer<UInt8>, width w: Int, out: UnsafeMutablePointer<UInt8>) {
        out[0] = src[0]
        out[1] = UInt8(truncatingIfNeeded: (3 &* Int(src[0]) &+ Int(src[1]) &+ 2) >> 2)
        for i in 1..<(w - 1) {
            let v = 3 &* Int(src[i])
            out[2 &* i] = UInt8(truncatingIfNeeded: (v &+ Int(src[i &- 1]) &+ 1) >> 2)
            out[2 &* i &+ 1] = UInt8(truncatingIfNeeded: (v &+ Int(src[i &+ 1]) &+ 2) >> 2)
        }
        let last = w &- 1
        out[2 &* last] = UInt8(truncatingIfNeeded: (3 &* Int(src[last]) &+ Int(src[last &- 1]) &+ 1) >> 2)
        out[2 &* last &+ 1] = src[last]
    }

    /// 2:1 in both directions (jdsample.c h2v2_fancy_upsample): column sums 3·near + far,
    /// then the horizontal triangle on those sums; needs width > 2.
    @inline(__always)
    static func h2v2(_ near: UnsafePointer<UInt8>, _ far: UnsafePointer<UInt8>, width w: Int, out: UnsafeMutablePointer<UInt8>) {
        var this = 3 &* Int(near[0]) &+ Int(far[0])
        var next = 3 &* Int(near[1]) &+ Int(far[1])
        out[0] = UInt8(truncatingIfNeeded: (this &* 4 &+ 8) >> 4)
        out[1] = UInt8(truncatingIfNeeded: (this &* 3 &+ next &+ 7) >> 4)
        var last = this
        this = next
        for i in 2..<w {
            next = 3 &* Int(near[i]) &+ Int(far[i])
            out[2 &* i &- 2] = UInt8(truncatingIfNeeded: (this &* 3 &+ last &+ 8) >> 4)
            out[2 &* i &- 1] = UInt8(truncatingIfNeeded: (this &* 3 &+ next &+ 7) >> 4)
            last = this
            this = next
        }
        out[2 &* w &- 2] = UInt8(truncatingIfNeeded: (this &* 3 &+ last &+ 8) >> 4)
        out[2 &* w &- 1] = UInt8(truncatingIfNeeded: (this &* 4 &+ 7) >> 4)
    }
}
