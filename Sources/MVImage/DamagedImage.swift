import MVFormats

/// How a file's encoded data is damaged.
public enum ImageDamage: String, Sendable, Equatable {
    /// The file ends early: data missing, or no end marker (JPEG EOI, PNG IEND).
    case truncated
    /// The data is there but wrong: an invalid entropy code, a scan that stops at a marker
    /// before its blocks are complete, bytes that belong to no block before a restart marker,
    /// an invalid DEFLATE stream.
    case corruptData = "corrupt data"
    /// A PNG chunk CRC or the zlib Adler-32 does not match the data.
    case badChecksum = "bad checksum"
}

/// A decode refused (or, when recovering, worked around) damaged data. One line: the file, the
/// format, the damage, the byte offset where it is known, and what was found there.
public struct DamagedImageError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file's path (or the name given to an in-memory decode).
    public internal(set) var file: String
    /// "JPEG", "PNG" or "PPM/PGM".
    public let format: String
    public let damage: ImageDamage
    /// Offset in the file where the damage starts (a truncated file: its length), when known.
    public let offset: Int?
    /// What exactly is wrong, e.g. "bad Huffman code" or "the image data ends early".
    public let detail: String

    init(format: String, damage: ImageDamage, offset: Int?, detail: String) {
        self.file = ""
        self.format = format
        self.damage = damage
        self.offset = offset
        self.detail = detail
    }

    /// The damage without the file name, e.g. "truncated JPEG file at byte 6698: no EOI marker".
    public var summary: String {
        let what = damage == .truncated ? "truncated \(format) file" : "damaged \(format) file (\(damage.rawValue))"
        return what + (offset.map { " at byte \($0)" } ?? "") + ": " + detail
    }

    public var description: String {
        (file.isEmpty ? "" : file + ": ") + summary
    }
}

/// What a decode does beyond producing pixels: the size limit and the damage policy.
public struct DecodeOptions: Sendable, Equatable {
    /// Images with more pixels are refused before any pixel memory is allocated.
    public var maxPixels: Int
    /// False (the default): damaged data is an error. True: decode what can be decoded the way
    /// libjpeg and Pillow's lenient mode do (restart-marker resynchronisation, a truncated scan
    /// padded, a missing end marker or a bad checksum ignored) and report the damage in
    /// `RGBImage.damage`.
    public var recoverDamaged: Bool

    public init(maxPixels: Int = ImageDecoder.defaultMaxPixels, recoverDamaged: Bool = false) {
        self.maxPixels = maxPixels
        self.recoverDamaged = recoverDamaged
    }
}

/// Applies the damage policy inside one decode: throws the damage when strict, remembers the
/// first one when recovering.
final class DamagePolicy {
    let recover: Bool
    private(set) var first: DamagedImageError?

    init(recover: Bool) {
        self.recover = recover
    }

    /// Throws `damage` unless recovering; then notes it (the first one) and returns.
    func found(_ damage: DamagedImageError) throws {
        guard recover else { throw damage }
        if first == nil { first = damage }
    }
}
