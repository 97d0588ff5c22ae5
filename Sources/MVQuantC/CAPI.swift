import MVImage
import MVQuantRuntime

// The C API declared in include/mvquant.h, implemented over MVQuantRuntime.
//
// Handles are retained Swift objects passed as opaque pointers: `mvq_model *` is an `MVQModel`
// with its labels' C strings, `mvq_session *` an `MVQSession` (which keeps its model alive, so
// closing a model while its sessions live is safe; the model is freed with its last session).
// Every argument is checked here, before any executor is reached (the executors use
// preconditions, which would end the host process). A failing call returns a nonzero
// `MVQError.Code` and leaves one line for `mvq_last_error()` in thread-local storage.

/// The C API's return codes (`MVQ_OK` and `MVQ_ERROR_…` in mvquant.h).
public enum MVQStatus {
    public static let ok: Int32 = 0
}

// MARK: thread-local last error

/// A pthread key whose value is the calling thread's last error, a malloc'ed C string freed on
/// the next failing call and at thread exit.
private let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    let r = pthread_key_create(&key) { free($0) }
    precondition(r == 0, "pthread_key_create failed")
    return key
}()

nonisolated(unsafe) private let emptyString: UnsafeMutablePointer<CChar> = strdup("")!

/// Stores `message` (one line) as the calling thread's last error and returns `code`.
@discardableResult
func fail(_ code: MVQError.Code, _ message: String) -> Int32 {
    let line = message.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? message
    let old = pthread_getspecific(lastErrorKey)
    let copy = strdup(line)
    pthread_setspecific(lastErrorKey, copy)
    free(old)
    return code.rawValue
}

func fail(_ error: Error) -> Int32 {
    if let e = error as? MVQError { return fail(e.code, e.message) }
    return fail(.internal, String(describing: error))
}

// MARK: handles

/// What an `mvq_model *` points to.
final class CModel {
    let model: MVQModel
    /// NUL-terminated labels, valid for the model's lifetime.
    let labels: [UnsafeMutablePointer<CChar>]

    init(_ model: MVQModel) {
        self.model = model
        labels = model.labels.map { strdup($0)! }
    }

    deinit { for l in labels { free(l) } }
}

/// What an `mvq_session *` points to.
final class CSession {
    let model: CModel
    let session: MVQSession

    init(model: CModel, session: MVQSession) {
        self.model = model
        self.session = session
    }
}

/// C handles: each owns one reference to its object, dropped by the matching close/destroy.
private func handle<T: AnyObject>(_ object: T) -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(object).toOpaque()) }
private func object<T: AnyObject>(_ p: OpaquePointer, _: T.Type) -> Unmanaged<T> { Unmanaged<T>.fromOpaque(UnsafeRawPointer(p)) }
private func cModel(_ p: OpaquePointer) -> CModel { object(p, CModel.self).takeUnretainedValue() }
private func cSession(_ p: OpaquePointer) -> CSession { object(p, CSession.self).takeUnretainedValue() }

nonisolated(unsafe) private let versionString: UnsafeMutablePointer<CChar> = strdup(mvquantRuntimeVersion)!

// MARK: functions

@_cdecl("mvq_version")
public func mvq_version() -> UnsafePointer<CChar> {
    UnsafePointer(versionString)
}

@_cdecl("mvq_last_error")
public func mvq_last_error() -> UnsafePointer<CChar> {
    guard let p = pthread_getspecific(lastErrorKey) else { return UnsafePointer(emptyString) }
    return UnsafePointer(p.assumingMemoryBound(to: CChar.self))
}

@_cdecl("mvq_model_open")
public func mvq_model_open(_ path: UnsafePointer<CChar>?, _ model: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let model else { return fail(.invalidArgument, "mvq_model_open: model is NULL") }
    model.pointee = nil
    guard let path else { return fail(.invalidArgument, "mvq_model_open: path is NULL") }
    let p = String(cString: path)
    guard !p.isEmpty else { return fail(.invalidArgument, "mvq_model_open: path is empty") }
    do {
        let m = CModel(try MVQModel(path: p))
        model.pointee = handle(m)
        return MVQStatus.ok
    } catch {
        return fail(error)
    }
}

@_cdecl("mvq_model_close")
public func mvq_model_close(_ model: OpaquePointer?) {
    guard let model else { return }
    object(model, CModel.self).release()
}

@_cdecl("mvq_model_num_labels")
public func mvq_model_num_labels(_ model: OpaquePointer?) -> Int32 {
    guard let model else {
        fail(.invalidArgument, "mvq_model_num_labels: model is NULL")
        return -1
    }
    return Int32(cModel(model).labels.count)
}

@_cdecl("mvq_model_label")
public func mvq_model_label(_ model: OpaquePointer?, _ index: Int32) -> UnsafePointer<CChar>? {
    guard let model else {
        fail(.invalidArgument, "mvq_model_label: model is NULL")
        return nil
    }
    let labels = cModel(model).labels
    guard index >= 0, Int(index) < labels.count else {
        fail(.invalidArgument, "mvq_model_label: index \(index) is outside 0…\(labels.count - 1)")
        return nil
    }
    return UnsafePointer(labels[Int(index)])
}

@_cdecl("mvq_model_input_size")
public func mvq_model_input_size(_ model: OpaquePointer?, _ height: UnsafeMutablePointer<Int32>?, _ width: UnsafeMutablePointer<Int32>?) -> Int32 {
    guard let model, let height, let width else { return fail(.invalidArgument, "mvq_model_input_size: NULL argument") }
    guard let size = cModel(model).model.inputSize else {
        height.pointee = 0
        width.pointee = 0
        return MVQStatus.ok
    }
    height.pointee = Int32(size.height)
    width.pointee = Int32(size.width)
    return MVQStatus.ok
}

@_cdecl("mvq_session_create")
public func mvq_session_create(_ model: OpaquePointer?, _ threads: Int32, _ session: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let session else { return fail(.invalidArgument, "mvq_session_create: session is NULL") }
    session.pointee = nil
    guard let model else { return fail(.invalidArgument, "mvq_session_create: model is NULL") }
    guard threads >= 1, threads <= 256 else { return fail(.invalidArgument, "mvq_session_create: threads \(threads) is outside 1…256") }
    let m = cModel(model)
    do {
        let s = CSession(model: m, session: try m.model.makeSession(threads: Int(threads)))
        session.pointee = handle(s)
        return MVQStatus.ok
    } catch {
        return fail(error)
    }
}

@_cdecl("mvq_session_destroy")
public func mvq_session_destroy(_ session: OpaquePointer?) {
    guard let session else { return }
    object(session, CSession.self).release()
}

/// Checks the logits buffer: non-NULL and at least the label count.
private func checkLogits(_ s: CSession, _ logits: UnsafeMutablePointer<Float>?, _ capacity: Int32, _ function: String) -> UnsafeMutableBufferPointer<Float>? {
    let n = s.session.logitCount
    guard let logits else {
        fail(.invalidArgument, "\(function): logits is NULL")
        return nil
    }
    guard capacity >= n else {
        fail(.invalidArgument, "\(function): capacity \(capacity) is less than the model's \(n) labels")
        return nil
    }
    return UnsafeMutableBufferPointer(start: logits, count: n)
}

@_cdecl("mvq_session_run_rgb")
public func mvq_session_run_rgb(_ session: OpaquePointer?, _ rgb: UnsafePointer<UInt8>?, _ width: Int32, _ height: Int32,
                                _ rowBytes: Int32, _ logits: UnsafeMutablePointer<Float>?, _ capacity: Int32) -> Int32 {
    let f = "mvq_session_run_rgb"
    guard let session else { return fail(.invalidArgument, "\(f): session is NULL") }
    guard let rgb else { return fail(.invalidArgument, "\(f): rgb is NULL") }
    let s = cSession(session)
    guard let out = checkLogits(s, logits, capacity, f) else { return MVQError.Code.invalidArgument.rawValue }
    let (w, h, stride) = (Int(width), Int(height), Int(rowBytes))
    do {
        try MVQLimits.checkImageSize(width: w, height: h)
    } catch {
        return fail(.invalidArgument, "\(f): \(error)")
    }
    guard stride >= 3 * w else { return fail(.invalidArgument, "\(f): row_bytes \(rowBytes) is less than 3 × width (\(3 * w))") }
    let bytes = UnsafeRawBufferPointer(start: rgb, count: (h - 1) * stride + 3 * w)
    do {
        try s.session.run(rgb: bytes, width: w, height: h, rowBytes: stride, into: out)
        return MVQStatus.ok
    } catch {
        return fail(error)
    }
}

@_cdecl("mvq_session_run_pixels")
public func mvq_session_run_pixels(_ session: OpaquePointer?, _ nchw: UnsafePointer<Float>?, _ height: Int32, _ width: Int32,
                                   _ logits: UnsafeMutablePointer<Float>?, _ capacity: Int32) -> Int32 {
    let f = "mvq_session_run_pixels"
    guard let session else { return fail(.invalidArgument, "\(f): session is NULL") }
    guard let nchw else { return fail(.invalidArgument, "\(f): nchw is NULL") }
    let s = cSession(session)
    guard let out = checkLogits(s, logits, capacity, f) else { return MVQError.Code.invalidArgument.rawValue }
    let (h, w) = (Int(height), Int(width))
    do {
        try MVQLimits.checkInputSize(height: h, width: w)
    } catch {
        return fail(.invalidArgument, "\(f): \(error)")
    }
    do {
        try s.session.run(pixels: UnsafeBufferPointer(start: nchw, count: s.model.model.inputChannels * h * w),
                          height: h, width: w, into: out)
        return MVQStatus.ok
    } catch {
        return fail(error)
    }
}

@_cdecl("mvq_session_run_file")
public func mvq_session_run_file(_ session: OpaquePointer?, _ path: UnsafePointer<CChar>?,
                                 _ logits: UnsafeMutablePointer<Float>?, _ capacity: Int32) -> Int32 {
    let f = "mvq_session_run_file"
    guard let session else { return fail(.invalidArgument, "\(f): session is NULL") }
    guard let path else { return fail(.invalidArgument, "\(f): path is NULL") }
    let s = cSession(session)
    guard let out = checkLogits(s, logits, capacity, f) else { return MVQError.Code.invalidArgument.rawValue }
    do {
        let values = try s.session.run(imageFile: String(cString: path))
        _ = out.update(fromContentsOf: values)
        return MVQStatus.ok
    } catch {
        return fail(error)
    }
}

@_cdecl("mvq_error_name")
public func mvq_error_name(_ code: Int32) -> UnsafePointer<CChar> {
    let name: StaticString
    switch code {
    case 0: name = "MVQ_OK"
    case 1: name = "MVQ_ERROR_INVALID_ARGUMENT"
    case 2: name = "MVQ_ERROR_NOT_FOUND"
    case 3: name = "MVQ_ERROR_BAD_MODEL"
    case 4: name = "MVQ_ERROR_UNSUPPORTED"
    case 5: name = "MVQ_ERROR_BAD_INPUT"
    case 6: name = "MVQ_ERROR_NON_FINITE_OUTPUT"
    case 7: name = "MVQ_ERROR_INTERNAL"
    default: name = "MVQ_ERROR_UNKNOWN"
    }
    return UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
