import MVFormats

/// The encodings this module reads, recognised by their first bytes.
public enum ImageFormat: String, Sendable, CaseIterable {
    case jpeg = "JPEG"
    case png = "PNG"
    case netpbm = "PPM/PGM"

    /// The format whose signature starts `prefix`, or nil. Looks at most at the first 8 bytes.
    public static func sniff<C: Collection>(_ prefix: C) -> ImageFormat? where C.Element == UInt8 {
        let head = Array(prefix.prefix(8))
        if head.count >= 3, head[0] == 0xFF, head[1] == 0xD8, head[2] == 0xFF { return .jpeg }
        if head.count >= 8, head == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        if head.count >= 2, head[0] == UInt8(ascii: "P"),
            [UInt8(ascii: "2"), UInt8(ascii: "3"), UInt8(ascii: "5"), UInt8(ascii: "6")].contains(head[1])
        {
            return .netpbm
        }
        return nil
    }
}

/// Decodes JPEG, PNG and PPM/PGM files to 8-bit RGB, matching what Pillow's
/// `Image.open(path).convert("RGB")` gives.
///
/// Sizes are checked against a pixel budget before any pixel memory is allocated, so a file
/// whose header claims gigantic dimensions is refused rather than exhausting memory. Every
/// failure has a one-line description starting with the file's name: a `DamagedImageError`
/// for damaged data (truncated, corrupt, bad checksum), otherwise an `InputError`.
public enum ImageDecoder {
    /// The default pixel budget: 100 megapixels.
    public static let defaultMaxPixels = 100_000_000

    public static func decode(path: String, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        try decode(path: path, options: DecodeOptions(maxPixels: maxPixels))
    }

    /// Decodes a file under `options`: damaged data throws `DamagedImageError` unless
    /// `options.recoverDamaged`, when the result's `damage` says what was worked around.
    public static func decode(path: String, options: DecodeOptions) throws -> RGBImage {
        try withMappedFile(path) { try decode(buffer: $0, name: path, options: options) }
    }

    /// Runs `body` on the bytes of a mapped file; failing to map it names the file.
    static func withMappedFile<T>(_ path: String, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        let file: MappedFile
        do {
            file = try MappedFile(path: path)
        } catch let e as InputError {
            throw e.inFile(path)
        }
        return try withExtendedLifetime(file) { try body(file.bytes) }
    }

    /// Decodes an encoded image held in memory; `name` is what error messages call it.
    public static func decode(bytes: [UInt8], name: String, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        try decode(bytes: bytes, name: name, options: DecodeOptions(maxPixels: maxPixels))
    }

    public static func decode(bytes: [UInt8], name: String, options: DecodeOptions) throws -> RGBImage {
        try bytes.withUnsafeBytes { try decode(buffer: $0, name: name, options: options) }
    }

    public static func decode(buffer: UnsafeRawBufferPointer, name: String, maxPixels: Int = defaultMaxPixels) throws -> RGBImage {
        try decode(buffer: buffer, name: name, options: DecodeOptions(maxPixels: maxPixels))
    }

    public static func decode(buffer: UnsafeRawBufferPointer, name: String, options: DecodeOptions) throws -> RGBImage {
        let (decoded, damage) = try decoding(name: name, options: options) { budget, policy -> RGBImage in
            switch try sniff(buffer) {
            case .jpeg: return try JPEGDecoder.decode(buffer, budget: budget, policy: policy)
            case .png: return try PNGDecoder.decode(buffer, budget: budget, policy: policy)
            case .netpbm: return try NetpbmDecoder.decode(buffer, budget: budget, policy: policy)
            }
        }
        var image = decoded
        image.damage = damage
        return image
    }

    /// Runs one decode under `options`: errors are named after `name`, and the damage a
    /// recovering decode worked around is returned (named too) beside the result.
    static func decoding<T>(name: String, options: DecodeOptions,
                            _ body: (PixelBudget, DamagePolicy) throws -> T) throws -> (T, DamagedImageError?)
    {
        do {
            let policy = DamagePolicy(recover: options.recoverDamaged)
            let result = try body(PixelBudget(maxPixels: options.maxPixels), policy)
            var damage = policy.first
            damage?.file = name
            return (result, damage)
        } catch let e as InputError {
            throw e.inFile(name)
        } catch var e as DamagedImageError {
            e.file = name
            throw e
        }
    }

    /// The format of an encoded image, or an error saying the bytes are none this module reads.
    static func sniff(_ buffer: UnsafeRawBufferPointer) throws -> ImageFormat {
        guard let format = ImageFormat.sniff(buffer) else {
            if buffer.isEmpty { throw InputError("empty file, not an image") }
            throw InputError("not a JPEG, PNG or PPM/PGM image (unrecognised signature \(hexPrefix(buffer)))")
        }
        return format
    }

    private static func hexPrefix(_ b: UnsafeRawBufferPointer) -> String {
        let digits = Array("0123456789abcdef")
        return b.prefix(8).map { String([digits[Int($0 >> 4)], digits[Int($0 & 15)]]) }.joined(separator: " ")
    }
}

/// The largest image a decode may produce, checked as soon as a header states its size.
struct PixelBudget {
    let maxPixels: Int

    /// Throws unless `width`×`height` is non-empty and within the budget. Returns the pixel count.
    @discardableResult
    func check(width: Int, height: Int, format: String) throws -> Int {
        guard width > 0, height > 0 else {
            throw InputError("\(format) header gives an empty image (\(width)x\(height))")
        }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels <= maxPixels else {
            throw InputError("\(format) image is \(width)x\(height), more than the limit of \(maxPixels) pixels")
        }
        // Callers allocate a few bytes per pixel; the budget must leave room for that.
        guard pixels <= Int.max / 16 else {
            throw InputError("\(format) image is \(width)x\(height), too large to address")
        }
        return pixels
    }
}
