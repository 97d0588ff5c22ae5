/// The inverse DCT of libjpeg's "islow" method (jidctint.c, the default of libjpeg-turbo and so
/// of Pillow): 13-bit fixed-point constants, two passes with 2 extra bits kept between them,
/// and the same wrap-around range limiting, so that output samples are identical.
enum JPEGIDCT {
    private static let constBits = 13
    private static let pass1Bits = 2

    // FIX(x) = round(x * 2^13) for the factors of the Loeffler-Ligtenberg-Moschytz IDCT.
    private static let fix_0_298631336 = 2446
    private static let fix_0_390180644 = 3196
    private static let fix_0_541196100 = 4433
    private static let fix_0_765366865 = 6270
    private static let fix_0_899976223 = 7373
    private static let fix_1_175875602 = 9633
    private static let fix_1_501321110 = 12299
    private static let fix_1_847759065 = 15137
    private static let fix_1_961570560 = 16069
    private static let fix_2_053119869 = 16819
    private static let fix_2_562915447 = 20995
    private static let fix_3_072711026 = 25172

    /// libjpeg's post-IDCT range limit: the low 10 bits of the descaled value, read as a signed
    /// number, plus 128, clamped to 0…255. Masking first (rather than clamping the full value)
    /// is what libjpeg does, so wildly out-of-range coefficients wrap exactly as there.
    static let rangeLimit: [UInt8] = (0..<1024).map { i in
        let v = i < 512 ? i : i - 1024
        return UInt8(min(max(v + 128, 0), 255))
    }

    /// Transforms one block of dequantised coefficients (natural order) into 8×8 samples at
    /// `output` with the given row stride. `workspace` holds 64 Int32.
    @inline(__always)
    static func transform(_ input: UnsafePointer<Int32>, _ output: UnsafeMutablePointer<UInt8>, stride: Int,
                          workspace ws: UnsafeMutablePointer<Int32>, range: UnsafePointer<UInt8>)
    {
        // Pass 1: columns, results scaled up by 2^pass1Bits.
        for c in 0..<8 {
            let i = input + c
            let w = ws + c
            if i[8] == 0 && i[16] == 0 && i[24] == 0 && i[32] == 0 && i[40] == 0 && i[48] == 0 && i[56] == 0 {
                let dc = Int32(truncatingIfNeeded: Int(i[0]) << pass1Bits)
                for r in 0..<8 { w[r &* 8] = dc }
                continue
            }
            var z2 = Int(i[16])
            var z3 = Int(i[48])
            let z1 = (z2 &+ z3) &* fix_0_541196100
            var tmp2 = z1 &+ z3 &* -fix_1_847759065
            var tmp3 = z1 &+ z2 &* fix_0_765366865
            z2 = Int(i[0])
            z3 = Int(i[32])
            var tmp0 = (z2 &+ z3) << constBits
            var tmp1 = (z2 &- z3) << constBits
            let tmp10 = tmp0 &+ tmp3
            let tmp13 = tmp0 &- tmp3
            let tmp11 = tmp1 &+ tmp2
            let tmp12 = tmp1 &- tmp2

            tmp0 = Int(i[56])
            tmp1 = Int(i[40])
            tmp2 = Int(i[24])
            tmp3 = Int(i[8])
            odd(&tmp0, &tmp1, &tmp2, &tmp3)

            let shift = constBits &- pass1Bits
            let round = 1 << (shift &- 1)
            w[0] = Int32(truncatingIfNeeded: (tmp10 &+ tmp3 &+ round) >> shift)
            w[56] = Int32(truncatingIfNeeded: (tmp10 &- tmp3 &+ round) >> shift)
            w[8] = Int32(truncatingIfNeeded: (tmp11 &+ tmp2 &+ round) >> shift)
            w[48] = Int32(truncatingIfNeeded: (tmp11 &- tmp2 &+ round) >> shift)
            w[16] = Int32(truncatingIfNeeded: (tmp12 &+ tmp1 &+ round) >> shift)
            w[40] = Int32(truncatingIfNeeded: (tmp12 &- tmp1 &+ round) >> shift)
            w[24] = Int32(truncatingIfNeeded: (tmp13 &+ tmp0 &+ round) >> shift)
            w[32] = Int32(truncatingIfNeeded: (tmp13 &- tmp0 &+ round) >> shift)
        }

        // Pass 2: rows, removing the 2^pass1Bits and the DCT's factor of 8.
        let shift = constBits + pass1Bits + 3
        let round = 1 << (shift &- 1)
        for r in 0..<8 {
            let w = ws + r &* 8
            let o = output + r &* stride
            if w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0 {
                let v = range[(Int(w[0]) &+ (1 << (pass1Bits + 2))) >> (pass1Bits + 3) & 1023]
                for c in 0..<8 { o[c] = v }
                continue
            }
            var z2 = Int(w[2])
            var z3 = Int(w[6])
            let z1 = (z2 &+ z3) &* fix_0_541196100
            var tmp2 = z1 &+ z3 &* -fix_1_847759065
            var tmp3 = z1 &+ z2 &* fix_0_765366865
            z2 = Int(w[0])
            z3 = Int(w[4])
            var tmp0 = (z2 &+ z3) << constBits
            var tmp1 = (z2 &- z3) << constBits
            let tmp10 = tmp0 &+ tmp3
            let tmp13 = tmp0 &- tmp3
            let tmp11 = tmp1 &+ tmp2
            let tmp12 = tmp1 &- tmp2

            tmp0 = Int(w[7])
            tmp1 = Int(w[5])
            tmp2 = Int(w[3])
            tmp3 = Int(w[1])
            odd(&tmp0, &tmp1, &tmp2, &tmp3)

            o[0] = range[(tmp10 &+ tmp3 &+ round) >> shift & 1023]
            o[7] = range[(tmp10 &- tmp3 &+ round) >> shift & 1023]
            o[1] = range[(tmp11 &+ tmp2 &+ round) >> shift & 1023]
            o[6] = range[(tmp11 &- tmp2 &+ round) >> shift & 1023]
            o[2] = range[(tmp12 &+ tmp1 &+ round) >> shift & 1023]
            o[5] = range[(tmp12 &- tmp1 &+ round) >> shift & 1023]
            o[3] = range[(tmp13 &+ tmp0 &+ round) >> shift & 1023]
            o[4] = range[(tmp13 &- tmp0 &+ round) >> shift & 1023]
        }
    }

    /// The odd part shared by both passes: inputs are the coefficients 7, 5, 3, 1 in
    /// tmp0…tmp3; outputs are the four odd terms in the same variables.
    @inline(__always)
    private static func odd(_ tmp0: inout Int, _ tmp1: inout Int, _ tmp2: inout Int, _ tmp3: inout Int) {
        let z1 = tmp0 &+ tmp3
        let z2 = tmp1 &+ tmp2
        var z3 = tmp0 &+ tmp2
        var z4 = tmp1 &+ tmp3
        let z5 = (z3 &+ z4) &* fix_1_175875602
        tmp0 &*= fix_0_298631336
        tmp1 &*= fix_2_053119869
        tmp2 &*= fix_3_072711026
        tmp3 &*= fix_1_501321110
        let m1 = z1 &* -fix_0_899976223
        let m2 = z2 &* -fix_2_562915447
        z3 = z3 &* -fix_1_961570560 &+ z5
        z4 = z4 &* -fix_0_390180644 &+ z5
        tmp0 &+= m1 &+ z3
        tmp1 &+= m2 &+ z4
        tmp2 &+= m2 &+ z3
        tmp3 &+= m1 &+ z4
    }

    /// A block whose only non-zero coefficient is the DC: every sample is the same.
    @inline(__always)
    static func transformDCOnly(_ dc: Int32, _ output: UnsafeMutablePointer<UInt8>, stride: Int, range: UnsafePointer<UInt8>) {
        let w = Int(Int32(truncatingIfNeeded: Int(dc) << pass1Bits))
        let v = range[(w + (1 << (pass1Bits + 2))) >> (pass1Bits + 3) & 1023]
        for r in 0..<8 {
            let o = output + r * stride
            for c in 0..<8 { o[c] = v }
        }
    }
}
