using System.Text;

namespace DiffKeeper.Cli.Setup;

/// <summary>A unified diff of two texts by lines (LCS; configs are a few hundred lines), 3 lines of context.</summary>
public static class TextDiff
{
    public static string Unified(string oldText, string newText, string oldName, string newName, int context = 3)
    {
        var a = SplitLines(oldText);
        var b = SplitLines(newText);
        // lcs[i, j] = length of the longest common subsequence of a[i..] and b[j..].
        var lcs = new int[a.Length + 1, b.Length + 1];
        for (int i = a.Length - 1; i >= 0; i--)
            for (int j = b.Length - 1; j >= 0; j--)
                lcs[i, j] = a[i] == b[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
        var ops = new List<(char Op, string Line, int A, int B)>();
        {
            int i = 0, j = 0;
            while (i < a.Length || j < b.Length)
            {
                if (i < a.Length && j < b.Length && a[i] == b[j]) { ops.Add((' ', a[i], i, j)); i++; j++; }
                else if (j < b.Length && (i == a.Length || lcs[i, j + 1] >= lcs[i + 1, j])) { ops.Add(('+', b[j], i, j)); j++; }
                else { ops.Add(('-', a[i], i, j)); i++; }
            }
        }
        if (ops.All(o => o.Op == ' ')) return "";
        var sb = new StringBuilder();
        sb.Append("--- ").Append(oldName).Append('\n').Append("+++ ").Append(newName).Append('\n');
        int k = 0;
        while (k < ops.Count)
        {
            if (ops[k].Op == ' ') { k++; continue; }
            int start = Math.Max(0, k - context);
            int end = k;
            // Extend the hunk while the next change is within 2*context unchanged lines.
            while (true)
            {
                while (end < ops.Count && ops[end].Op != ' ') end++;
                int next = end;
                while (next < ops.Count && ops[next].Op == ' ') next++;
                if (next < ops.Count && next - end <= 2 * context) { end = next; continue; }
                end = Math.Min(ops.Count, end + context);
                break;
            }
            int aStart = ops[start].A, bStart = ops[start].B;
            int aLen = ops.Skip(start).Take(end - start).Count(o => o.Op != '+');
            int bLen = ops.Skip(start).Take(end - start).Count(o => o.Op != '-');
            sb.Append($"@@ -{aStart + (aLen > 0 ? 1 : 0)},{aLen} +{bStart + (bLen > 0 ? 1 : 0)},{bLen} @@\n");
            for (int m = start; m < end; m++) sb.Append(ops[m].Op).Append(ops[m].Line).Append('\n');
            k = end;
        }
        return sb.ToString();
    }

    private static string[] SplitLines(string s)
    {
        if (s.Length == 0) return [];
        var lines = s.Split('\n');
        return s.EndsWith('\n') ? lines[..^1] : lines;
    }
}
