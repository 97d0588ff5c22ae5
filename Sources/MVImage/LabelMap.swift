import MVFormats

/// A decoded label mask: one class per pixel, row-major, no padding between rows.
///
/// The values are the file's stored samples: palette indices for a palette PNG (not the
/// colours they look up), grey values for an 8-bit greyscale PNG, exactly what numpy gives for
/// `np.asarray(Image.open(mask))`. 255 (`SegmentationMetrics.ignoreLabel`) conventionally marks
/// pixels that are not scored.
public struct LabelMap: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height` labels: (0,0), then (1,0), …
    public var labels: [UInt8]
    /// The damage a decode with `DecodeOptions.recoverDamaged` worked around (the first found);
    /// nil for an intact file.
    public var damage: DamagedImageError?

    /// `labels.count` must be `width * height`; a mismatch is a programming error.
    public init(width: Int, height: Int, labels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && labels.count == width * height,
                     "LabelMap: \(labels.count) labels do not fill \(width)x\(height) pixels")
        self.width = width
        self.height = height
        self.labels = labels
    }

    public var pixelCount: Int { width * height }

    /// The label of one pixel; coordinates must lie inside the map.
    public func label(x: Int, y: Int) -> UInt8 { labels[y * width + x] }
}

extension ImageDecoder {
    /// Decodes a label mask: a palette PNG (colour type 3, any bit depth) or an 8-bit greyscale
    /// PNG (Pillow mode "L"), giving its stored samples (see `LabelMap`). Any other image (RGB
    /// or with alpha, greyscale below or above 8 bits, JPEG, PPM) is refused with an
    /// `InputError` naming the file. Size limits and damaged data follow `options` as
    /// `decode(path:options:)` does.
    public static func decodeLabels(path: String, options: DecodeOptions = DecodeOptions()) throws -> LabelMap {
        try withMappedFile(path) { try decodeLabels(buffer: $0, name: path, options: options) }
    }

    /// Decodes a label mask held in memory; `name` is what error messages call it.
    public static func decodeLabels(bytes: [UInt8], name: String, options: DecodeOptions = DecodeOptions()) throws -> LabelMap {
        try bytes.withUnsafeBytes { try decodeLabels(buffer: $0, name: name, options: options) }
    }

    public static func decodeLabels(buffer: UnsafeRawBufferPointer, name: String,
                                    options: DecodeOptions = DecodeOptions()) throws -> LabelMap
    {
        let (decoded, damage) = try decoding(name: name, options: options) { budget, policy -> LabelMap in
            let format = try sniff(buffer)
            guard format == .png else {
                throw InputError("a \(format.rawValue) image is not a label mask: \(PNGDecoder.labelMaskRule)")
            }
            return try PNGDecoder.decodeLabels(buffer, budget: budget, policy: policy)
        }
        var map = decoded
        map.damage = damage
        return map
    }
}
