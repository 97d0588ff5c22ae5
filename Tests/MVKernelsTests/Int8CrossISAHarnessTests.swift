import MVKernels
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Runs the NEON, NEON-dot-product and AVX-512 VNNI kernels, which this x86-64 machine cannot run
/// natively, through a C harness: AArch64 builds under qemu-user (`-cpu cortex-a72` for `neon`,
/// `-cpu cortex-a76` for `neondot` and `neon`), and VNNI through SIMDe's emulation of the AVX-512
/// intrinsics. Each case is skipped (with a message) when its tools are missing:
/// `apt-get install qemu-user-static gcc-aarch64-linux-gnu libsimde-dev`.
final class Int8CrossISAHarnessTests: XCTestCase {
    static let kernelSources = ["int8_pack.c", "int8_pack_avx2.c", "gemm_neon.c", "gemm_neondot.c", "dwconv_neon.c", "gemm_avx2.c", "dwconv_avx2.c",
                                "gemm_avx512vnni.c", "dwconv_avx512.c", "int8_support.c", "cpu_features.c"]

    var cDir: String {
        var dir = #filePath
        for _ in 0..<3 { dir = String(dir[..<dir.lastIndex(of: "/")!]) }  // package root
        return dir + "/Sources/MVKernelsC"
    }

    func tool(_ name: String) -> Bool { system("command -v \(name) >/dev/null 2>&1") == 0 }

    func workDirectory() throws -> String {
        let dir = TemporaryDirectory().path
        let path = dir + "/harness.c"
        guard let f = fopen(path, "w") else { throw XCTSkip("cannot write \(path)") }
        fputs(Int8HarnessSource.harnessC, f)
        fclose(f)
        return dir
    }

    func sh(_ command: String) -> Int32 {
        print("$ \(command)")
        return system(command)
    }

    func testAArch64KernelsUnderQEMU() throws {
        guard tool("aarch64-linux-gnu-gcc"), tool("qemu-aarch64-static") else {
            throw XCTSkip("aarch64-linux-gnu-gcc or qemu-aarch64-static missing")
        }
        let dir = try workDirectory()
        defer { _ = system("rm -rf '\(dir)'") }
        let sources = Self.kernelSources.map { "'\(cDir)/\($0)'" }.joined(separator: " ")
        XCTAssertEqual(sh("aarch64-linux-gnu-gcc -O2 -static -Wall -o '\(dir)/h' '\(dir)/harness.c' \(sources) -I '\(cDir)/include' -I '\(cDir)'"), 0)
        XCTAssertEqual(sh("qemu-aarch64-static -cpu cortex-a72 '\(dir)/h' neon 400"), 0, "neon on Cortex-A72")
        XCTAssertEqual(sh("qemu-aarch64-static -cpu cortex-a76 '\(dir)/h' neondot 400"), 0, "neondot on Cortex-A76")
        XCTAssertEqual(sh("qemu-aarch64-static -cpu cortex-a76 '\(dir)/h' neon 100"), 0, "neon on Cortex-A76")
        // The dot-product kernel must not run on a CPU without the extension (dispatch guards it).
        XCTAssertNotEqual(sh("qemu-aarch64-static -cpu cortex-a72 '\(dir)/h' neondot 1 >/dev/null 2>&1"), 0)
    }

    func testAVX512VNNIKernelUnderSIMDeEmulation() throws {
        #if arch(x86_64)
        guard tool("gcc"), FileManagerless.exists("/usr/include/simde/x86/avx512.h") else {
            throw XCTSkip("gcc or SIMDe (libsimde-dev) missing")
        }
        let dir = try workDirectory()
        defer { _ = system("rm -rf '\(dir)'") }
        let sources = ["int8_pack.c", "int8_pack_avx2.c", "gemm_avx512vnni.c", "dwconv_avx512.c", "gemm_neon.c", "gemm_neondot.c", "dwconv_neon.c", "int8_support.c", "cpu_features.c"]
            .map { "'\(cDir)/\($0)'" }.joined(separator: " ")
        XCTAssertEqual(sh("gcc -O2 -w -Wno-psabi -DMV_SIMDE_EMULATION -o '\(dir)/h' '\(dir)/harness.c' \(sources) -I '\(cDir)/include' -I '\(cDir)'"), 0)
        XCTAssertEqual(sh("'\(dir)/h' avx512vnni 400"), 0, "avx512vnni (SIMDe emulation)")
        #else
        throw XCTSkip("x86-64 only")
        #endif
    }
}

enum FileManagerless {
    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}
