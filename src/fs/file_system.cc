#include "fs/file_system.h"

#include "fs/path.h"

namespace tidemark::fs {

Result<std::string> ReadFileToString(FileSystem* fs, const std::string& path) {
  TM_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file, fs->NewRandomAccessFile(path));
  TM_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  std::string out(static_cast<size_t>(size), '\0');
  TM_ASSIGN_OR_RETURN(size_t n, file->Read(0, out.size(), out.data()));
  out.resize(n);
  return out;
}

Status WriteStringToFileAtomic(FileSystem* fs, const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  {
    TM_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, fs->NewWritableFile(tmp));
    TM_RETURN_IF_ERROR(file->Append(data));
    TM_RETURN_IF_ERROR(file->Sync());
    TM_RETURN_IF_ERROR(file->Close());
  }
  TM_RETURN_IF_ERROR(fs->Rename(tmp, path));
  return fs->SyncDir(Dirname(path));
}

}  // namespace tidemark::fs
