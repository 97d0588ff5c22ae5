#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import MVFormats

/// Zero-filled scratch memory owned by one decode (component planes, coefficient blocks).
///
/// It comes from calloc so that large buffers are backed by untouched zero pages until they are
/// written: a damaged file that claims a big image but stops early costs little real memory.
/// Elements must be plain integers.
final class ZeroedBuffer<Element> {
    let base: UnsafeMutablePointer<Element>
    let count: Int

    init(count: Int, what: String) throws {
        let n = max(count, 1)
        guard n <= Int.max / MemoryLayout<Element>.stride, let raw = calloc(n, MemoryLayout<Element>.stride) else {
            throw InputError("cannot allocate \(count) elements for \(what)")
        }
        base = raw.bindMemory(to: Element.self, capacity: n)
        self.count = count
    }

    deinit { free(base) }
}
