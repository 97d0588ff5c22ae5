import MVFormats

/// Netpbm images: P2/P5 (PGM, grey) and P3/P6 (PPM, RGB), plain (ASCII) or raw (binary),
/// with '#' comments in the header, decoded as Pillow's PpmImagePlugin does.
///
/// A maxval other than 255 is rescaled as Pillow does: round(v / maxval · 255), Python's
/// round-half-to-even on the double quotient. For 16-bit greymaps Pillow keeps 32-bit "I"
/// samples and then clips them to 255 when converting to RGB; here they are rescaled the same
/// way as 16-bit pixmaps instead, which is the meaningful 8-bit picture.
enum NetpbmDecoder {
    static func decode(_ bytes: UnsafeRawBufferPointer, budget: PixelBudget, policy: DamagePolicy) throws -> RGBImage {
        var r = ByteReader(bytes, truncatedMessage: "the file ends before the pixel data does", fileFormat: "PPM/PGM")
        guard try r.u8() == UInt8(ascii: "P") else { throw InputError("not a PPM/PGM file") }
        let kind = try r.u8()
        let plain: Bool
        let channels: Int
        switch kind {
        case UInt8(ascii: "2"): plain = true; channels = 1
        case UInt8(ascii: "3"): plain = true; channels = 3
        case UInt8(ascii: "5"): plain = false; channels = 1
        case UInt8(ascii: "6"): plain = false; channels = 3
        default: throw InputError("unsupported Netpbm type P\(Character(Unicode.Scalar(kind)))")
        }
        // The magic must be followed by whitespace (Pillow reads it as a token).
        guard let next = r.peek(), isWhitespace(next) else { throw InputError("bad PPM/PGM magic number") }
        let width = try headerToken(&r)
        let height = try headerToken(&r)
        let maxval = try headerToken(&r)
        guard maxval > 0, maxval < 65536 else { throw InputError("PPM/PGM maxval must be in 1...65535, got \(maxval)") }
        let pixels = try budget.check(width: width, height: height, format: "PPM/PGM")
        let samples = try checkedProduct(pixels, channels, "PPM/PGM image")

        // round(v / maxval * 255) for every possible v, so the per-sample work is a lookup.
        let scale: [UInt8] = (0...maxval).map { v in
            maxval == 255 ? UInt8(v) : UInt8(min(255, (Double(v) / Double(maxval) * 255).rounded(.toNearestOrEven)))
        }

        var values = [UInt8](repeating: 0, count: samples)
        if plain {
            for i in 0..<samples {
                let v = try plainValue(&r)
                guard v <= maxval else { throw InputError("PPM/PGM sample value \(v) exceeds maxval \(maxval)") }
                values[i] = scale[v]
            }
        } else {
            // Exactly one whitespace byte separates the header from the raster.
            try r.skip(1)
            let wide = maxval > 255
            let raster = try r.take(try checkedProduct(samples, wide ? 2 : 1, "PPM/PGM image"))
            for i in 0..<samples {
                let v = wide ? Int(raster[2 * i]) << 8 | Int(raster[2 * i + 1]) : Int(raster[i])
                // Pillow clamps raw samples above maxval to the maximum.
                values[i] = v <= maxval ? scale[v] : 255
            }
        }
        if channels == 3 { return RGBImage(width: width, height: height, pixels: values) }
        var rgb = [UInt8](repeating: 0, count: samples * 3)
        for i in 0..<samples {
            rgb[3 * i] = values[i]; rgb[3 * i + 1] = values[i]; rgb[3 * i + 2] = values[i]
        }
        return RGBImage(width: width, height: height, pixels: rgb)
    }

    static func isWhitespace(_ c: UInt8) -> Bool {
        c == 0x20 || (c >= 0x09 && c <= 0x0D)
    }

    /// A decimal header field, skipping whitespace and '#' comments (to the end of the line).
    /// Tokens are at most 10 characters, as in Pillow, so values cannot overflow.
    static func headerToken(_ r: inout ByteReader) throws -> Int {
        var digits: [UInt8] = []
        while true {
            guard let c = r.peek() else {
                if digits.isEmpty {
                    throw DamagedImageError(format: "PPM/PGM", damage: .truncated, offset: r.position, detail: "the file ends inside the header")
                }
                break
            }
            if isWhitespace(c) {
                if !digits.isEmpty { break }
                try r.skip(1)
                continue
            }
            if c == UInt8(ascii: "#") {
                while let d = r.peek(), d != 0x0A, d != 0x0D { try r.skip(1) }
                continue
            }
            guard c >= 0x30, c <= 0x39 else { throw InputError("PPM/PGM header: expected a number, found byte \(c)") }
            digits.append(c)
            guard digits.count <= 10 else { throw InputError("PPM/PGM header: number too long") }
            try r.skip(1)
        }
        return digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    /// One sample of a plain (ASCII) raster; comments may appear between samples.
    static func plainValue(_ r: inout ByteReader) throws -> Int {
        var value = 0
        var digits = 0
        while let c = r.peek() {
            if isWhitespace(c) {
                if digits > 0 { break }
                try r.skip(1)
                continue
            }
            if c == UInt8(ascii: "#") {
                if digits > 0 { break }
                while let d = r.peek(), d != 0x0A, d != 0x0D { try r.skip(1) }
                continue
            }
            guard c >= 0x30, c <= 0x39 else { throw InputError("PPM/PGM data: expected a number, found byte \(c)") }
            digits += 1
            guard digits <= 10 else { throw InputError("PPM/PGM data: number too long") }
            value = value * 10 + Int(c - 0x30)
            try r.skip(1)
        }
        guard digits > 0 else {
            throw DamagedImageError(format: "PPM/PGM", damage: .truncated, offset: r.position,
                                    detail: "fewer samples than the header says")
        }
        return value
    }
}
