/// The PASCAL VOC colour map (the devkit's `labelcolormap`), in which segmentation label maps
/// are usually shown: label 0 is black, 1 is (128, 0, 0), 2 (0, 128, 0), 3 (128, 128, 0),
/// 4 (0, 0, 128), …, 255 (224, 224, 192).
public enum VOCPalette {
    /// The colour of `label` (≥ 0): its bits are dealt to R, G, B in turn (bit 0 to R, bit 1
    /// to G, bit 2 to B, bit 3 to R, …), each channel filled from its high bit down. Only the
    /// low 24 bits of a label count.
    public static func color(_ label: Int) -> (UInt8, UInt8, UInt8) {
        precondition(label >= 0, "VOC palette: negative label \(label)")
        var r = 0, g = 0, b = 0
        var c = label
        for j in 0..<8 {
            r |= (c & 1) << (7 - j)
            g |= (c >> 1 & 1) << (7 - j)
            b |= (c >> 2 & 1) << (7 - j)
            c >>= 3
        }
        return (UInt8(r), UInt8(g), UInt8(b))
    }

    /// R, G, B of labels 0…255: 768 bytes, a PNG palette.
    public static let colors256: [UInt8] = (0..<256).flatMap { label -> [UInt8] in
        let (r, g, b) = color(label)
        return [r, g, b]
    }
}
