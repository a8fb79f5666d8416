namespace DiffKeeper.Cli.Arguments;

/// <summary>"did you mean": the closest known name by edit distance, when it is close enough to be a typo.</summary>
public static class Suggest
{
    /// <summary>" (did you mean 'x'?)" or "" when nothing is close (at most a third of the word's letters differ).</summary>
    public static string DidYouMean(string word, IEnumerable<string> candidates)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (var c in candidates)
        {
            int d = Distance(word, c);
            // A prefix of exactly one candidate is as good as a typo ("--ou" → "--out").
            if (c.StartsWith(word, StringComparison.Ordinal) && word.TrimStart('-').Length >= 2) d = Math.Min(d, 1);
            // Ties go to the candidate that starts like the word ("--ot": --out before --at).
            if (d < bestDistance || d == bestDistance && best != null && SameStart(word, c) && !SameStart(word, best)) { best = c; bestDistance = d; }
        }
        int letters = word.TrimStart('-').Length;
        return best != null && bestDistance <= Math.Max(1, letters / 3) ? $" (did you mean '{best}'?)" : "";
    }

    private static bool SameStart(string a, string b)
    {
        a = a.TrimStart('-'); b = b.TrimStart('-');
        return a.Length > 0 && b.Length > 0 && a[0] == b[0];
    }

    /// <summary>Damerau-Levenshtein (optimal string alignment): insert, delete, substitute, swap two neighbours.</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }
}
