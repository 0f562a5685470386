#pragma once
// We link ITK without its use-file, so the ImageIO factories are registered by hand, once.
namespace lungvol::io {
void register_itk_factories();  // thread-safe, idempotent
}  // namespace lungvol::io
