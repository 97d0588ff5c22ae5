// swift-tools-version:6.0
// mvquant: an integer-only int8 runtime for MobileViT. No package dependencies.
//
// Modules, each depending only on modules listed before it (the `dependencies` below say which):
//   MVKernelsC  the ISA-specific inner loops Swift cannot name (one C file per ISA)
//   MVKernels   int8/float kernels, reference + SIMD, run-time dispatch; knows nothing of
//               models or files
//   MVFormats   safetensors, JSON, the .mvq container, mapped files
//   MVImage     JPEG/PNG/PPM decoding, MobileViT preprocessing, datasets        (MVFormats)
//   MVModel     MobileViT configuration and graph, the operator list every executor
//               interprets (`Network`), checkpoints, the .mvq records            (MVFormats)
//   MVFloat     float32 reference executor (NHWC)                                (MVModel, MVKernels)
//   MVInt8      int8 executor (.mvq loader, memory plan, threads)                (MVModel, MVKernels)
//   MVQuant     calibration, the int8 compiler (.mvq writer), error reports      (MVFloat, MVInt8)
//   MVQuantRuntime  the embedding facade: open a model, sessions, run on RGB/pixels/files
//                                                                                (MVImage, MVModel, MVFloat, MVInt8)
//   MVQuantC    the C API (`include/mvquant.h`, @_cdecl), the libmvquant library  (MVQuantRuntime)
//   MVCLI       the `mvquant` command line                                       (all of the above but MVQuantC)
import PackageDescription

let package = Package(
    name: "mvquant",
    products: [
        .executable(name: "mvquant", targets: ["mvquant"]),
        .library(name: "MVQuantRuntime", targets: ["MVQuantRuntime"]),
        // The C API as a shared library, libmvquant.so (Targets/c-api/build.sh makes it self-contained).
        .library(name: "mvquant-c", type: .dynamic, targets: ["MVQuantC"]),
    ],
    targets: [
        .target(name: "MVKernelsC"),
        .target(name: "MVKernels", dependencies: ["MVKernelsC"]),
        .target(name: "MVFormats"),
        .target(name: "MVImage", dependencies: ["MVFormats"]),
        .target(name: "MVModel", dependencies: ["MVFormats"]),
        .target(name: "MVFloat", dependencies: ["MVModel", "MVKernels"]),
        .target(name: "MVInt8", dependencies: ["MVModel", "MVFormats", "MVKernels"]),
        .target(name: "MVQuant", dependencies: ["MVModel", "MVFloat", "MVInt8", "MVFormats", "MVKernels"]),
        .target(name: "MVQuantRuntime", dependencies: ["MVFormats", "MVImage", "MVModel", "MVFloat", "MVInt8"]),
        .target(name: "MVQuantC", dependencies: ["MVQuantRuntime", "MVImage"]),
        .target(name: "MVCLI", dependencies: ["MVQuantRuntime", "MVFormats", "MVImage", "MVModel", "MVFloat", "MVQuant", "MVInt8", "MVKernels"]),
        .executableTarget(name: "mvquant", dependencies: ["MVCLI"]),
        .testTarget(name: "MVFormatsTests", dependencies: ["MVFormats", "TestSupport"]),
        .testTarget(name: "MVModelTests", dependencies: ["MVModel", "MVFloat", "MVFormats", "TestSupport"]),
        .testTarget(name: "MVImageTests", dependencies: ["MVImage", "MVFormats", "TestSupport"]),
        .testTarget(name: "MVKernelsTests", dependencies: ["MVKernels", "TestSupport"]),
        .testTarget(name: "MVQuantTests", dependencies: ["MVQuant", "MVInt8", "MVModel", "MVFloat", "MVFormats", "MVKernels", "MVImage", "TestSupport"]),
        .testTarget(name: "MVCLITests", dependencies: ["MVCLI", "MVFormats", "MVImage", "TestSupport"]),
        .testTarget(name: "MVQuantRuntimeTests", dependencies: ["MVQuantRuntime", "MVQuantC", "MVQuant", "MVInt8", "MVFloat", "MVModel", "MVImage", "MVFormats", "TestSupport"]),
        .target(name: "TestSupport", dependencies: ["MVFormats"], path: "Tests/TestSupport"),
    ],
    swiftLanguageModes: [.v6]
)
