// swift-tools-version:6.0
import PackageDescription

// Ingot: one package, one library per pipeline stage, dependencies pointing one way:
//   IngotFormats  <-  IngotArchitectures  <-  IngotModel  <-  IngotEvaluate  <-  ingot (CLI)
//   IngotFormats  <-  IngotNumerics  <-  IngotModel  <-  IngotConvert  <-  ingot
//   IngotFormats  <-  IngotPack (libzstd)  <-  ingot
//   IngotFormats  <-  IngotNumerics  <-  IngotQuantize  <-  ingot
//   IngotModel  <-  IngotCalibrate  <-  ingot
//   IngotConvert, IngotNumerics  <-  IngotExperts  <-  ingot
//   IngotQuantize, IngotEvaluate  <-  IngotFit  <-  ingot
//   IngotFormats  <-  IngotReport  <-  ingot
// The kernels are built twice on x86-64: IngotNumerics for the baseline CPU (SSE2: runs on any x86-64), and
// IngotNumericsAVX2, the same source files (symbolic links) compiled for Haswell (AVX2, BMI2, F16C), which
// IngotNumerics calls at run time when /proc/cpuinfo shows those features. Both give identical bytes (no
// floating-point contraction in Swift); see BENCHMARKS.md for what each build is worth. On CPUs with AVX-512 the
// float matrix product runs from IngotKernelsAVX512 (one file, sixteen lanes). On arm64 the baseline build already
// has NEON, so there is one build.
// The kernels are the workload of every test that quantizes, evaluates or calibrates, and Swift's SIMD types are
// generic code that runs orders of magnitude slower unoptimized: debug builds (`swift test`) optimize the numerics
// targets too. Release builds are unchanged.
let optimizedInDebug: SwiftSetting = .unsafeFlags(["-O"], .when(configuration: .debug))

#if arch(x86_64)
let kernelVariants: [Target] = [
    .target(
        name: "IngotNumericsAVX2",
        dependencies: ["IngotFormats"],
        swiftSettings: [.define("INGOT_KERNEL_VARIANT"), .unsafeFlags(["-target-cpu", "haswell"]), optimizedInDebug]
    ),
    // The float matrix product on sixteen-lane vectors, for CPUs with AVX-512 (skylake-avx512: its explicit
    // 512-bit vectors stay 512-bit), chosen at run time like the AVX2 build.
    .target(name: "IngotKernelsAVX512", swiftSettings: [.unsafeFlags(["-target-cpu", "skylake-avx512"]), optimizedInDebug]),
]
#else
let kernelVariants: [Target] = []
#endif

let package = Package(
    name: "Ingot",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ingot", targets: ["ingot"]),
        .library(name: "IngotFormats", targets: ["IngotFormats"]),
        .library(name: "IngotArchitectures", targets: ["IngotArchitectures"]),
        .library(name: "IngotModel", targets: ["IngotModel"]),
        .library(name: "IngotConvert", targets: ["IngotConvert"]),
        .library(name: "IngotPack", targets: ["IngotPack"]),
        .library(name: "IngotNumerics", targets: ["IngotNumerics"]),
        .library(name: "IngotQuantize", targets: ["IngotQuantize"]),
        .library(name: "IngotEvaluate", targets: ["IngotEvaluate"]),
        .library(name: "IngotCalibrate", targets: ["IngotCalibrate"]),
        .library(name: "IngotExperts", targets: ["IngotExperts"]),
        .library(name: "IngotFit", targets: ["IngotFit"]),
        .library(name: "IngotReport", targets: ["IngotReport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // File formats: byte cursor, GGUF, safetensors, Hugging Face folders, JSON, atomic output.
        .target(name: "IngotFormats"),
        // One table per architecture (hyperparameters and tensor names in GGUF's and Hugging Face's vocabularies,
        // q/k permutation) and ModelSpec, the one reader and writer of hyperparameters.
        .target(name: "IngotArchitectures", dependencies: ["IngotFormats"]),
        // The tokenizer, inventories of tensors, the forward pass.
        .target(name: "IngotModel", dependencies: ["IngotFormats", "IngotArchitectures", "IngotNumerics"]),
        // Conversion between Hugging Face folders and GGUF (names, permutation, dtypes, tokenizer, metadata), streamed.
        .target(name: "IngotConvert", dependencies: ["IngotFormats", "IngotArchitectures", "IngotModel", "IngotNumerics"]),
        // Evaluation: perplexity and KL divergence against a base model, as llama-perplexity computes them.
        .target(name: "IngotEvaluate", dependencies: ["IngotFormats", "IngotModel", "IngotNumerics"]),
        // Calibration: importance matrices (llama-imatrix's statistics) from the forward pass over a text.
        .target(name: "IngotCalibrate", dependencies: ["IngotFormats", "IngotArchitectures", "IngotModel", "IngotNumerics", "IngotConvert"]),
        // Mixture-of-experts surgery: pruning experts by the statistics calibration recorded.
        .target(name: "IngotExperts", dependencies: ["IngotFormats", "IngotArchitectures", "IngotConvert", "IngotNumerics"]),
        // Fitting a model to a size: each tensor's sensitivity measured through the forward pass, one type per tensor
        // chosen under a byte budget.
        .target(name: "IngotFit", dependencies: ["IngotFormats", "IngotModel", "IngotNumerics", "IngotQuantize", "IngotEvaluate"]),
        // Reports a reader opens offline: a self-contained HTML page with inline SVG charts, and its data as JSON.
        .target(name: "IngotReport", dependencies: ["IngotFormats"]),
        // libzstd from the system (Debian: libzstd-dev).
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]),
        // Packed artifacts: per-tensor frames, byte transforms by dtype, zstd, a checksummed index.
        .target(name: "IngotPack", dependencies: ["IngotFormats", "CZstd"]),
        // Number formats and kernels: F16/BF16, every GGUF block format (scalar reference + SIMD).
        .target(name: "IngotNumerics", dependencies: ["IngotFormats"] + kernelVariants.map { .target(name: $0.name) },
                swiftSettings: [optimizedInDebug]),
        // Quantization plans (llama-quantize presets and per-tensor rules) and the streaming GGUF quantizer.
        .target(name: "IngotQuantize", dependencies: ["IngotFormats", "IngotModel", "IngotNumerics"]),
        .executableTarget(
            name: "ingot",
            dependencies: [
                "IngotFormats", "IngotArchitectures", "IngotModel", "IngotConvert", "IngotPack", "IngotNumerics", "IngotQuantize",
                "IngotEvaluate", "IngotCalibrate", "IngotExperts", "IngotFit", "IngotReport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "IngotFormatsTests", dependencies: ["IngotFormats"]),
        .testTarget(name: "IngotModelTests", dependencies: ["IngotModel", "IngotArchitectures", "IngotFormats", "IngotNumerics"]),
        .testTarget(name: "IngotConvertTests", dependencies: ["IngotConvert", "IngotModel", "IngotArchitectures", "IngotFormats", "IngotNumerics"]),
        .testTarget(name: "IngotEvaluateTests", dependencies: ["IngotEvaluate", "IngotModel", "IngotFormats", "IngotNumerics"]),
        .testTarget(name: "IngotPackTests", dependencies: ["IngotPack", "IngotFormats"]),
        .testTarget(name: "IngotNumericsTests", dependencies: ["IngotNumerics", "IngotFormats"]),
        // A tiny llama written as GGUF, for the tests that run a model.
        .target(name: "IngotTestSupport", dependencies: ["IngotFormats", "IngotNumerics"], path: "Tests/IngotTestSupport"),
        .testTarget(name: "IngotCalibrateTests", dependencies: ["IngotCalibrate", "IngotModel", "IngotFormats", "IngotNumerics", "IngotTestSupport"]),
        .testTarget(name: "IngotExpertsTests", dependencies: ["IngotExperts", "IngotArchitectures", "IngotFormats"]),
        .testTarget(name: "IngotFitTests", dependencies: ["IngotFit", "IngotFormats", "IngotNumerics", "IngotModel", "IngotQuantize", "IngotTestSupport"]),
        .testTarget(name: "IngotReportTests", dependencies: ["IngotReport", "IngotFormats"]),
        .testTarget(name: "IngotQuantizeTests", dependencies: ["IngotQuantize", "IngotNumerics", "IngotFormats"]),
    ] + kernelVariants
)
