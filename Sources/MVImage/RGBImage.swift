/// A decoded image: 8-bit RGB, interleaved, row-major, no padding between rows.
///
/// Every decoder ends here, whatever the file held (grey, palette, alpha, CMYK, 16-bit), so
/// everything after decoding sees one layout.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes: R, G, B of (0,0), then (1,0), …
    public var pixels: [UInt8]
    /// The damage a decode with `DecodeOptions.recoverDamaged` worked around (the first found);
    /// nil for an intact file.
    public var damage: DamagedImageError?

    /// `pixels.count` must be `width * height * 3`; a mismatch is a programming error.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "RGBImage: \(pixels.count) bytes do not hold \(width)x\(height) RGB pixels")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public var pixelCount: Int { width * height }

    /// The (r, g, b) of one pixel; coordinates must lie inside the image.
    public func pixel(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }
}
