import MVFormats

/// Bounds-checked big-endian reads over a byte buffer. Every read that would pass the end
/// throws instead of trapping, so header parsing never trusts lengths that came from the file.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var position: Int
    /// The text of the error thrown when a read runs past the end, e.g. "truncated PNG file".
    let truncatedMessage: String
    /// Set when `bytes` is a whole file of this format: running past the end is then a truncated
    /// file (a `DamagedImageError` at the file's length) rather than an inconsistent header.
    let fileFormat: String?

    init(_ bytes: UnsafeRawBufferPointer, position: Int = 0, truncatedMessage: String, fileFormat: String? = nil) {
        self.bytes = bytes
        self.position = min(max(position, 0), bytes.count)
        self.truncatedMessage = truncatedMessage
        self.fileFormat = fileFormat
    }

    var remaining: Int { bytes.count - position }
    var isAtEnd: Bool { position >= bytes.count }

    func truncated() -> any Error {
        guard let fileFormat else { return InputError(truncatedMessage) }
        return DamagedImageError(format: fileFormat, damage: .truncated, offset: bytes.count, detail: truncatedMessage)
    }

    mutating func u8() throws -> UInt8 {
        guard position < bytes.count else { throw truncated() }
        let v = bytes[position]
        position += 1
        return v
    }

    mutating func u16be() throws -> Int {
        guard remaining >= 2 else { throw truncated() }
        let v = Int(bytes[position]) << 8 | Int(bytes[position + 1])
        position += 2
        return v
    }

    mutating func u32be() throws -> UInt32 {
        guard remaining >= 4 else { throw truncated() }
        var v: UInt32 = 0
        for k in 0..<4 { v = v << 8 | UInt32(bytes[position + k]) }
        position += 4
        return v
    }

    /// The next byte without consuming it, or nil at the end.
    func peek() -> UInt8? {
        position < bytes.count ? bytes[position] : nil
    }

    mutating func skip(_ n: Int) throws {
        guard n >= 0, n <= remaining else { throw truncated() }
        position += n
    }

    /// The next `n` bytes, in place.
    mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else { throw truncated() }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)])
        position += n
        return slice
    }

    mutating func seek(to p: Int) {
        position = min(max(p, 0), bytes.count)
    }
}

/// Multiplications of sizes that came from a file: overflow is bad input, not a trap.
@inline(__always)
func checkedProduct(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
    let (p, overflow) = a.multipliedReportingOverflow(by: b)
    guard !overflow, a >= 0, b >= 0 else { throw InputError("\(what()) is too large") }
    return p
}

@inline(__always)
func checkedSum(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
    let (s, overflow) = a.addingReportingOverflow(b)
    guard !overflow else { throw InputError("\(what()) is too large") }
    return s
}
