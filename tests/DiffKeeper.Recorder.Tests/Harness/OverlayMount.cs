namespace DiffKeeper.Recorder.Tests.Harness;

/// <summary>A real overlay mount as containerd's snapshotter makes one: lower (the "image"), upper, work, merged.</summary>
public sealed class OverlayMount : IDisposable
{
    public string Lower { get; }
    public string Upper { get; }
    public string Work { get; }
    public string Merged { get; }
    private bool _mounted;

    public OverlayMount(TempDir dir, Action<string>? fillLower = null)
    {
        Lower = dir.CreateSub("lower");
        Upper = dir.CreateSub("upper");
        Work = dir.CreateSub("work");
        Merged = dir.CreateSub("merged");
        fillLower?.Invoke(Lower);
        Env.Run("mount", "-t", "overlay", "overlay", "-o", $"lowerdir={Lower},upperdir={Upper},workdir={Work}", Merged);
        _mounted = true;
    }

    public void Dispose()
    {
        if (!_mounted) return;
        _mounted = false;
        try { Env.Run("umount", Merged); }
        catch (IOException) { try { Env.Run("umount", "-l", Merged); } catch (IOException) { } }
    }
}
