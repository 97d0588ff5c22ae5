import MVFormats

extension MVQReader {
    /// Every tensor of the file, copied out in name order: what a test rewrites with
    /// `MVQFile.write` after editing the header or a tensor (the checksum is then valid again).
    public func copiedTensors() throws -> [MVQFile.Tensor] {
        try tensors.keys.sorted().map { name in
            let info = try info(name)
            return MVQFile.Tensor(name: name, dtype: info.dtype, shape: info.shape, bytes: Array(try raw(name)))
        }
    }
}
