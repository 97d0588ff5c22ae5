import MVKernels
import MVModel

/// The float executor's memory plan for one input size: every tensor and every operator's scratch
/// placed in one block by lifetime (`ArenaLayout`), and each operator's operands resolved to
/// pointers once, so a run only walks the operator list.
final class FloatPlan {
    let input: FloatExecutor.Tensor
    /// Per operator: its input tensors, its output (a concat input is a slice of the concat's
    /// buffer) and its scratch.
    let inputs: [[FloatExecutor.Tensor]]
    let outputs: [FloatExecutor.Tensor]
    let scratch: [UnsafeMutablePointer<Float>]
    let bytes: Int
    private let block: UnsafeMutablePointer<Float>

    init(network: Network, layers: [PreparedOperator], height: Int, width: Int) {
        let shapes: [String: TensorShape]
        do { shapes = try network.shapes(height: height, width: width) } catch {
            preconditionFailure("\(error)")  // callers check the input size first (checkInputSize)
        }
        let ops = network.operators
        // Buffers: the input, each operator's output unless it is a concat input, each scratch.
        var buffers = [ArenaLayout.Buffer(bytes: 4 * shapes[Network.input]!.count, firstUse: 0,
                                          lastUse: network.lastUse[Network.input] ?? 0)]
        var bufferOf: [String: Int] = [Network.input: 0]
        var firstWrite: [String: Int] = [:]
        for (i, op) in ops.enumerated() {
            if let s = network.concatSlices[op.output] {
                firstWrite[s.concat] = min(firstWrite[s.concat] ?? i, i)
            }
        }
        var scratchBuffer: [Int?] = []
        for (i, op) in ops.enumerated() {
            if network.concatSlices[op.output] == nil {
                bufferOf[op.output] = buffers.count
                buffers.append(ArenaLayout.Buffer(bytes: 4 * shapes[op.output]!.count, firstUse: firstWrite[op.output] ?? i,
                                                  lastUse: max(i, network.lastUse[op.output] ?? i)))
            }
            let floats = Self.scratchFloats(op, layers[i], shapes: shapes, network: network)
            scratchBuffer.append(floats > 0 ? buffers.count : nil)
            if floats > 0 { buffers.append(ArenaLayout.Buffer(bytes: 4 * floats, firstUse: i, lastUse: i)) }
        }
        let layout = ArenaLayout(buffers)
        bytes = layout.size
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(layout.size, 64), alignment: ArenaLayout.alignment)
        block = raw.bindMemory(to: Float.self, capacity: max(layout.size, 64) / 4)
        let base = block
        func tensor(_ name: String) -> FloatExecutor.Tensor {
            let s = shapes[name]!
            if let slice = network.concatSlices[name] {
                let concat = shapes[slice.concat]!
                return FloatExecutor.Tensor(data: base + layout.offsets[bufferOf[slice.concat]!] / 4 + slice.channelOffset,
                                            h: s.height, w: s.width, c: s.channels, stride: concat.channels)
            }
            return FloatExecutor.Tensor(data: base + layout.offsets[bufferOf[name]!] / 4, h: s.height, w: s.width, c: s.channels)
        }
        input = tensor(Network.input)
        inputs = ops.map { $0.inputs.map(tensor) }
        outputs = ops.map { tensor($0.output) }
        scratch = scratchBuffer.map { $0.map { base + layout.offsets[$0] / 4 } ?? base }
    }

    deinit { block.deallocate() }

    /// Floats of working memory an operator needs beside its operands.
    static func scratchFloats(_ op: Operator, _ layer: PreparedOperator, shapes: [String: TensorShape],
                              network: Network) -> Int {
        switch op.kind {
        case let .conv(l):
            guard l.form == .dense || l.form == .grouped else { return 0 }
            return FloatExecutor.denseTile * l.kernel * l.kernel * l.inChannels
        case let .attention(t):
            let ps = network.tokenPatchSize[op.output]!
            let s = FloatExecutor.attentionScratch(tokens: shapes[op.output]!.pixels / (ps * ps), headSize: t.headSize)
            return s.scores + s.packed + s.zeros
        case .unfold:
            let x = shapes[op.inputs[0]]!, y = shapes[op.output]!
            return x.pixels == y.pixels ? 0 : y.count
        case .fold:
            let x = shapes[op.inputs[0]]!, y = shapes[op.output]!
            return x.pixels == y.pixels ? 0 : x.count
        default:
            return 0
        }
    }
}
